// Yilian's one error strategy: functions that can fail return Status or Result<T>.
// Foreign error codes (SQLite, DCMTK, errno, libwebsockets) are translated into an Error
// at the module boundary that calls them; Errors are turned into a DICOM status, an HTTP
// status or a WebSocket error message only at the edge (see docs/ARCHITECTURE.md).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace yilian {

enum class Errc {
  invalid_argument,   // the caller's input is wrong (HTTP 400, DICOM 0xC000 family)
  not_found,          // HTTP 404
  conflict,           // state conflict (HTTP 409)
  unauthenticated,    // no valid credentials (HTTP 401)
  permission_denied,  // HTTP 403
  unavailable,        // shutting down / overloaded (HTTP 503, DICOM 0xA700)
  io,                 // file system or device failure (HTTP 500, DICOM 0xA700)
  out_of_space,       // the disk's reserve is reached: nothing more is stored (HTTP 507, 0xA700)
  corrupt,            // stored data is inconsistent
  internal,           // a bug or an unexpected library error
};

const char* errc_name(Errc c);

struct Error {
  Errc code = Errc::internal;
  std::string message;
};

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

// Result<T>: a value or an Error. [[nodiscard]] so that no failure is dropped silently.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

// Status: success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : e_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  static Status Ok() { return Status(); }

  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const {
    assert(!ok());
    return *e_;
  }

 private:
  std::optional<Error> e_;
};

inline const char* errc_name(Errc c) {
  switch (c) {
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::not_found:
      return "not_found";
    case Errc::conflict:
      return "conflict";
    case Errc::unauthenticated:
      return "unauthenticated";
    case Errc::permission_denied:
      return "permission_denied";
    case Errc::unavailable:
      return "unavailable";
    case Errc::io:
      return "io";
    case Errc::out_of_space:
      return "out_of_space";
    case Errc::corrupt:
      return "corrupt";
    case Errc::internal:
      return "internal";
  }
  return "internal";
}

}  // namespace yilian
