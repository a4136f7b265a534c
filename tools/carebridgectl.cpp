// carebridgectl: the operator's command line. It will talk to carebridged's
// local API (a unix socket in the runtime directory); for now it knows its
// version and its usage. Exit codes: 0 ok, 2 usage error.
#include <cstdio>
#include <string_view>

#include "carebridge/version.hpp"

namespace {

void print_usage(std::FILE* out) {
    std::fputs(
        "usage: carebridgectl [--version | --help]\n"
        "\n"
        "Operator's command line for carebridged. Commands over the daemon's local API\n"
        "(status, readers, devices, outbox) are not available in this version.\n",
        out);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && std::string_view(argv[1]) == "--version") {
        std::printf("carebridgectl %s\n", cb::version_string);
        return 0;
    }
    if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
        print_usage(stdout);
        return 0;
    }
    if (argc > 1)
        std::fprintf(stderr, "carebridgectl: unknown command '%s'\n", argv[1]);
    print_usage(stderr);
    return 2;
}
