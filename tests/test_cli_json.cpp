// The command line's JSON string escaper (src/cli/json.hpp): its output must be valid JSON for any
// bytes, since spec strings and paths come from users.
#include <catch2/catch.hpp>
#include <string>

#include "../src/cli/json.hpp"

using attnkit::cli::json_string;

TEST_CASE("json_string escapes quotes, backslashes and control characters", "[cli][json]") {
  CHECK(json_string("") == "\"\"");
  CHECK(json_string("exact:window=8") == "\"exact:window=8\"");
  CHECK(json_string("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(json_string(std::string("x\x01y\n\x1f", 5)) == "\"x\\u0001y\\u000a\\u001f\"");
  CHECK(json_string("\x7f") == "\"\x7f\"");  // DEL needs no escape in JSON
}

TEST_CASE("json_string keeps well-formed UTF-8 and replaces every other high byte", "[cli][json]") {
  // 2, 3 and 4 byte sequences, including the edges RFC 3629 allows
  for (const std::string ok : {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80",
                               "\xed\x9f\xbf", "\xee\x80\x80", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf"}) {
    INFO(ok);
    CHECK(json_string(ok) == "\"" + ok + "\"");
  }
  const std::string r = "\\ufffd";
  CHECK(json_string("\xff") == "\"" + r + "\"");                       // never in UTF-8
  CHECK(json_string("caf\xe9.npy") == "\"caf" + r + ".npy\"");         // Latin-1
  CHECK(json_string("\xc3") == "\"" + r + "\"");                       // truncated at the end
  CHECK(json_string("\xc3x") == "\"" + r + "x\"");                     // truncated by ASCII
  CHECK(json_string("\xc0\xaf") == "\"" + r + r + "\"");               // overlong '/'
  CHECK(json_string("\xe0\x9f\xbf") == "\"" + r + r + r + "\"");       // overlong 3-byte
  CHECK(json_string("\xed\xa0\x80") == "\"" + r + r + r + "\"");       // UTF-16 surrogate
  CHECK(json_string("\xf4\x90\x80\x80") == "\"" + r + r + r + r + "\"");  // above U+10FFFF
  CHECK(json_string("\xf5\x80\x80\x80") == "\"" + r + r + r + r + "\"");
  CHECK(json_string("\x80") == "\"" + r + "\"");                       // a lone continuation byte
  CHECK(json_string("a\xe2\x82\xac\"\xff") == "\"a\xe2\x82\xac\\\"" + r + "\"");
}
