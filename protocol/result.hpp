// Result<T>: errors are values in protocol/ and drivers/.
//
// A function that can fail on input or environment returns Result<T>; the
// caller either handles the Error or propagates it with CB_TRY:
//
//     Result<Tlv> parse_one(ByteReader& in) {
//         auto tag = CB_TRY(read_tag(in));      // returns the Error on failure
//         ...
//     }
//
// Broken invariants are not Results: they assert. Exceptions, if any, stop
// at the daemon's edges.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace cb {

// What kind of failure, so callers can decide without parsing messages.
enum class ErrorKind {
    invalid_input,   // bytes or text that break the format (malformed, truncated)
    limit_exceeded,  // well-formed but over a hard cap (depth, size, loop count)
    unsupported,     // well-formed but outside what we implement
    io,              // the environment failed (file, socket, device)
    unavailable,     // a peer or service is not there (yet); retrying may help
    internal,        // a bug surfaced as a value at a boundary
};

const char* to_string(ErrorKind kind) noexcept;

// A failure with a message that names the thing: what was read, where, what
// was expected. Messages never contain secrets (PINs, keys, tokens).
class Error {
public:
    Error(ErrorKind kind, std::string message) : m_kind(kind), m_message(std::move(message)) {}

    ErrorKind kind() const noexcept { return m_kind; }
    const std::string& message() const noexcept { return m_message; }

    // Returns a copy whose message is prefixed with "context: ", to say where
    // a lower-level error happened without losing what it was.
    Error with_context(const std::string& context) const { return Error(m_kind, context + ": " + m_message); }

private:
    ErrorKind m_kind;
    std::string m_message;
};

// A T or an E (by default an Error). Other error types are for parsers whose
// callers branch on a richer reason (e.g. devices::Rejection).
template <typename T, typename E = Error>
class [[nodiscard]] Result {
public:
    Result(T value) : m_storage(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
    Result(E error) : m_storage(std::in_place_index<1>, std::move(error)) {}  // NOLINT(google-explicit-constructor)

    bool has_value() const noexcept { return m_storage.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & {
        assert(has_value());
        return std::get<0>(m_storage);
    }
    const T& value() const& {
        assert(has_value());
        return std::get<0>(m_storage);
    }
    T&& value() && {
        assert(has_value());
        return std::get<0>(std::move(m_storage));
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const E& error() const& {
        assert(!has_value());
        return std::get<1>(m_storage);
    }
    E&& error() && {
        assert(!has_value());
        return std::get<1>(std::move(m_storage));
    }

private:
    std::variant<T, E> m_storage;
};

template <>
class [[nodiscard]] Result<void, Error> {
public:
    Result() = default;
    Result(Error error) : m_error(std::move(error)), m_failed(true) {}  // NOLINT(google-explicit-constructor)

    bool has_value() const noexcept { return !m_failed; }
    explicit operator bool() const noexcept { return has_value(); }
    void value() const { assert(has_value()); }

    const Error& error() const& {
        assert(m_failed);
        return m_error;
    }
    Error&& error() && {
        assert(m_failed);
        return std::move(m_error);
    }

private:
    Error m_error{ErrorKind::internal, ""};
    bool m_failed = false;
};

// The text of an errno value ("No such file or directory"), thread-safe.
std::string system_error_text(int error_number);

// Shorthand for building errors: `return fail(ErrorKind::invalid_input, "...")`.
inline Error fail(ErrorKind kind, std::string message) {
    return Error(kind, std::move(message));
}

}  // namespace cb

// CB_TRY(expr): evaluates a Result; on failure returns its Error from the
// enclosing function, otherwise yields the value. (A GNU statement expression,
// supported by g++ and clang, as SerenityOS's TRY.)
#define CB_TRY(expression)                            \
    ({                                                \
        auto cb_try_result_ = (expression);           \
        if (!cb_try_result_.has_value())              \
            return std::move(cb_try_result_).error(); \
        std::move(cb_try_result_).value();            \
    })
