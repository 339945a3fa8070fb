#pragma once
// attnkit::Error: the one exception type of the library.
#include <sstream>
#include <stdexcept>
#include <string>

namespace attnkit {

// Thrown for every bad argument, unsupported request or unreadable file. The message names the
// argument, the value seen and the value expected.
class Error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw Error(os.str());
}
}  // namespace detail

}  // namespace attnkit
