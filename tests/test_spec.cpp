#include <catch2/catch.hpp>

#include "attnkit/attnkit.hpp"

using namespace attnkit;

TEST_CASE("parse_spec splits name and pairs", "[spec]") {
  const ParsedSpec s = parse_spec("local:window=256, global=16");
  CHECK(s.name == "local");
  REQUIRE(s.pairs.size() == 2);
  CHECK(s.pairs[0] == std::make_pair(std::string("window"), std::string("256")));
  CHECK(s.pairs[1] == std::make_pair(std::string("global"), std::string("16")));
  CHECK(parse_spec("exact").pairs.empty());
  CHECK_THROWS_WITH(parse_spec(""), Catch::Contains("empty backend name"));
  CHECK_THROWS_WITH(parse_spec(":a=1"), Catch::Contains("empty backend name"));
  CHECK_THROWS_WITH(parse_spec("x:a"), Catch::Contains("no '='"));
  CHECK_THROWS_WITH(parse_spec("x:a=1,a=2"), Catch::Contains("given twice"));
  CHECK_THROWS_WITH(parse_spec("x:=1"), Catch::Contains("empty key"));
  CHECK_THROWS_WITH(parse_spec("x:a=1,"), Catch::Contains("no '='"));
}

TEST_CASE("Params types, ranges, defaults and canonical form", "[spec]") {
  const std::vector<ParamDef> defs{{"n", ParamType::Int, "4", 1, 10, ""},
                                   {"x", ParamType::Float, "0.5", 0, 1, ""},
                                   {"on", ParamType::Bool, "0", 0, 1, ""},
                                   {"file", ParamType::String, "", 0, 0, ""}};
  Params p("t", defs, {{"x", "0.25"}, {"on", "true"}});
  CHECK(p.get_int("n") == 4);
  CHECK(p.get_float("x") == 0.25);
  CHECK(p.get_bool("on"));
  CHECK(p.get_string("file").empty());
  CHECK(p.canonical() == "t:n=4,x=0.25,on=1");
  CHECK(Params("t", defs, {{"file", "w.npy"}}).canonical() == "t:n=4,x=0.5,on=0,file=w.npy");
  CHECK_THROWS_WITH(Params("t", defs, {{"m", "1"}}), Catch::Contains("unknown key 'm'") && Catch::Contains("n, x, on, file"));
  CHECK_THROWS_WITH(Params("t", defs, {{"n", "11"}}), Catch::Contains("out of range") && Catch::Contains("[1, 10]"));
  CHECK_THROWS_WITH(Params("t", defs, {{"n", "1.5"}}), Catch::Contains("not an integer"));
  CHECK_THROWS_WITH(Params("t", defs, {{"n", ""}}), Catch::Contains("not an integer"));
  CHECK_THROWS_WITH(Params("t", defs, {{"x", "nan"}}), Catch::Contains("not a finite number"));
  CHECK_THROWS_WITH(Params("t", defs, {{"on", "yes"}}), Catch::Contains("not a boolean"));
  CHECK_THROWS_WITH(Params("t", defs, {{"n", "99999999999999999999999"}}), Catch::Contains("not an integer"));
}

TEST_CASE("registry creates backends and round-trips their spec", "[spec][registry]") {
  for (const BackendInfo& info : list_backends()) {
    const auto b = make_backend(info.name);
    INFO(info.name);
    CHECK(make_backend(b->spec())->spec() == b->spec());
  }
  CHECK(make_backend("exact:block_q=32")->spec() == "exact:block_q=32,block_k=0");
  CHECK_THROWS_WITH(make_backend("nosuch"), Catch::Contains("unknown") && Catch::Contains("exact"));
  CHECK_THROWS_WITH(make_backend("exact:bogus=1"), Catch::Contains("unknown key 'bogus'"));
  CHECK_THROWS_WITH(make_backend("reference:x=1"), Catch::Contains("takes no parameters"));
}
