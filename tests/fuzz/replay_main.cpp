// Replays a fuzz corpus without libFuzzer: feeds every file under the given
// directories (or the given files) to LLVMFuzzerTestOneInput once. Used by
// CTest so that committed corpora run in every build, sanitizers included.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

int replay_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
        return 1;
    }
    std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    int failures = 0;
    std::size_t replayed = 0;
    for (int i = 1; i < argc; ++i) {
        const std::filesystem::path root(argv[i]);
        if (std::filesystem::is_directory(root)) {
            for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
                if (!entry.is_regular_file())
                    continue;
                failures += replay_file(entry.path());
                ++replayed;
            }
        } else {
            failures += replay_file(root);
            ++replayed;
        }
    }
    std::printf("replay: %zu inputs, %d unreadable\n", replayed, failures);
    if (replayed == 0) {
        std::fprintf(stderr, "replay: empty corpus\n");
        return 1;
    }
    return failures == 0 ? 0 : 1;
}
