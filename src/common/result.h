// Result<T>: the one error model of deviceops (see STYLE.md, "One error model").
//
// Functions in the core that can fail return Result<T> (or Status for no value). Exceptions from
// third-party libraries are caught at the edge of the component that calls them and turned into
// an Error here. ErrorCode maps to an HTTP status in exactly one place: http/errors.cc.
//
// Long fallible sequences read straight down with the macros at the end of this file:
//   RETURN_IF_ERROR(store.insert(record));
//   ASSIGN_OR_RETURN(Model model, registry.find(name));
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace deviceops {

// Codes are chosen by what the caller can do about them, not by where they came from.
enum class ErrorCode {
  kInvalidArgument,       // the request itself is wrong; retrying it unchanged fails again (400)
  kUnauthenticated,       // no or unknown credentials (401)
  kPermissionDenied,      // credentials valid but insufficient, or path outside allowed roots (403)
  kNotFound,              // the named thing does not exist (404)
  kConflict,              // the state of the target forbids it now, e.g. budget exceeded (409)
  kPayloadTooLarge,       // body above the configured limit (413)
  kUnsupportedMediaType,  // wrong Content-Type (415): a JSON body that is not JSON
  kUnprocessable,      // well-formed and understood, but this target cannot take it (422): e.g. a
                       // model that must be re-exported first
  kResourceExhausted,  // the device cannot hold it at all (507)
  kUnavailable,        // transient: try again later (503)
  kDeadlineExceeded,   // the work did not finish in time (504)
  kInternal,           // a bug or an unexpected library failure (500)
};

// Stable, documented string form used in JSON error bodies ("INVALID_ARGUMENT", ...).
std::string_view errorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // client-facing: what was wrong and what was expected
  nlohmann::json details = nlohmann::json::object();
  // When trying again makes sense, after how long (HTTP: Retry-After). Unset on a kUnavailable
  // error means one second.
  std::optional<std::chrono::seconds> retryAfter;
};

inline Error makeError(ErrorCode code, std::string message,
                       nlohmann::json details = nlohmann::json::object()) {
  return Error{code, std::move(message), std::move(details), std::nullopt};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // Preconditions: ok() for value(), !ok() for error().
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  const Error& error() const { return std::get<1>(state_); }

  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Error> state_;
};

// Result<void>.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  static Status success() { return Status(); }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

// The error of a Status or a failed Result, for the macros below.
inline const Error& errorOf(const Status& status) { return status.error(); }
template <class T>
const Error& errorOf(const Result<T>& result) {
  return result.error();
}

}  // namespace deviceops

// Returns the error of `expression` (a Status or a Result) from the enclosing function, whose
// return type must be constructible from an Error (Status or any Result<T>).
#define RETURN_IF_ERROR(expression)                                       \
  do {                                                                    \
    if (auto&& deviceops_status_ = (expression); !deviceops_status_.ok()) \
      return ::deviceops::errorOf(deviceops_status_);                     \
  } while (false)

#define DEVICEOPS_CONCAT_INNER_(a, b) a##b
#define DEVICEOPS_CONCAT_(a, b) DEVICEOPS_CONCAT_INNER_(a, b)
// Declares `declaration` (e.g. `Model model` or `auto model`) from the value of the Result
// `expression`, or returns its error from the enclosing function.
#define ASSIGN_OR_RETURN(declaration, expression)                     \
  auto DEVICEOPS_CONCAT_(deviceops_result_, __LINE__) = (expression); \
  if (!DEVICEOPS_CONCAT_(deviceops_result_, __LINE__).ok())           \
    return DEVICEOPS_CONCAT_(deviceops_result_, __LINE__).error();    \
  declaration = std::move(DEVICEOPS_CONCAT_(deviceops_result_, __LINE__)).value()
