#include "training_formats/torch_pickle.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace deviceops::training {
namespace {

using namespace std::string_literals;

// Pickle pieces, as torch.save (protocol 2) writes them.
std::string text(std::string_view s) {
  std::string out = "X";
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((s.size() >> (8 * i)) & 0xFF));
  return out + std::string(s);
}
std::string int1(int value) { return std::string("K") + static_cast<char>(value); }
std::string ints(const std::vector<int>& values) {
  std::string out = "(";
  for (int value : values) out += int1(value);
  return out + "t";
}
std::string global(std::string_view module, std::string_view name) {
  return "c" + std::string(module) + "\n" + std::string(name) + "\n";
}
std::string tensor(std::string_view storageType, std::string_view key, int numel, int offset,
                   const std::vector<int>& size, const std::vector<int>& stride) {
  return global("torch._utils", "_rebuild_tensor_v2") + "((" + text("storage") +
         global("torch", storageType) + text(key) + text("cpu") + int1(numel) + "tQ" +
         int1(offset) + ints(size) + ints(stride) + "\x89" + global("collections", "OrderedDict") +
         ")R" + "tR";
}
// SETITEMS of already pickled values onto the dict on top of the stack.
std::string setItems(const std::vector<std::pair<std::string, std::string>>& items) {
  std::string out = "(";
  for (const auto& [key, value] : items) out += text(key) + value;
  return out + "u";
}
// {key: value, ...}
std::string dict(const std::vector<std::pair<std::string, std::string>>& items) {
  return "}" + setItems(items);
}
std::string pickle(const std::string& body) { return "\x80\x02" + body + "."; }

TEST(TorchPickleTest, ReadsTensorLayoutsOfATopLevelDict) {
  const std::string bytes = pickle(dict({
      {"weight", tensor("HalfStorage", "0", 12, 2, {2, 3}, {1, 2})},
      {"bias", tensor("BFloat16Storage", "1", 3, 0, {3}, {1})},
      {"scalar", tensor("LongStorage", "2", 1, 0, {}, {})},
      {"step", int1(7)},
  }));
  Result<PickledStateDict> parsed = unpickleStateDict(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->tensors.size(), 3u);
  const PickledTensor& weight = parsed->tensors[0];
  EXPECT_EQ(weight.name, "weight");
  EXPECT_EQ(weight.storageKey, "0");
  EXPECT_EQ(weight.storageType, "torch.HalfStorage");
  EXPECT_EQ(weight.dtype, TorchDtype::kF16);
  EXPECT_EQ(weight.storageNumel, 12u);
  EXPECT_EQ(weight.storageOffset, 2);
  EXPECT_EQ(weight.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(weight.stride, (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(parsed->tensors[1].dtype, TorchDtype::kBF16);
  EXPECT_EQ(parsed->tensors[2].dtype, TorchDtype::kI64);
  EXPECT_TRUE(parsed->tensors[2].shape.empty());
  EXPECT_EQ(parsed->skipped, std::vector<std::string>{"step"});
  EXPECT_FALSE(parsed->nested);
}

TEST(TorchPickleTest, TakesTheNestedStateDictAndIgnoresOpaqueObjects) {
  // Lightning: state_dict beside callbacks (an unknown class built with NEWOBJ + BUILD, a numpy
  // scalar via REDUCE, a set) and an optimizer holding a tensor of an unsupported storage.
  const std::string callback = global("__main__", "Callback") + ")\x81" + dict({{"x", "N"}}) + "b";
  const std::string numpyScalar = global("numpy.core.multiarray", "scalar") +
                                  global("numpy", "dtype") + text("f4") + "\x85R" + text("abcd") +
                                  "\x86R";
  const std::string set = global("__builtin__", "set") + "]" + int1(1) + "a\x85R";
  const std::string optimizer =
      dict({{"exp_avg", tensor("ComplexFloatStorage", "9", 1, 0, {1}, {1})}});
  const std::string bytes = pickle(dict({
      {"epoch", int1(1)},
      {"state_dict", global("collections", "OrderedDict") + ")R" +
                         setItems({{"a", tensor("FloatStorage", "0", 4, 0, {4}, {1})},
                                   {"b", tensor("DoubleStorage", "1", 2, 0, {2}, {1})}}) +
                         dict({{"version", int1(1)}}) + "b"},
      {"callbacks", callback},
      {"np", numpyScalar},
      {"tags", set},
      {"optimizer_states", "]" + optimizer + "a"},
  }));
  Result<PickledStateDict> parsed = unpickleStateDict(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_TRUE(parsed->nested);
  ASSERT_EQ(parsed->tensors.size(), 2u);
  EXPECT_EQ(parsed->tensors[0].name, "a");
  EXPECT_EQ(parsed->tensors[1].name, "b");
  EXPECT_EQ(parsed->tensors[1].dtype, TorchDtype::kF64);
  EXPECT_TRUE(parsed->skipped.empty());
}

TEST(TorchPickleTest, UnwrapsParametersAndHonoursMemoAndLaterKeys) {
  const std::string parameter = global("torch._utils", "_rebuild_parameter") + "(" +
                                tensor("FloatStorage", "0", 4, 0, {2, 2}, {2, 1}) + "q\x01" +
                                "\x88" + global("collections", "OrderedDict") + ")Rt" + "R";
  const std::string bytes = pickle(dict({{"p", parameter},
                                         {"same", "h\x01"},  // BINGET of the memoized tensor
                                         {"p", tensor("IntStorage", "1", 1, 0, {1}, {1})}}));
  Result<PickledStateDict> parsed = unpickleStateDict(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->tensors.size(), 2u);
  EXPECT_EQ(parsed->tensors[0].name, "p");  // replaced in place, as a dict does
  EXPECT_EQ(parsed->tensors[0].dtype, TorchDtype::kI32);
  EXPECT_EQ(parsed->tensors[1].name, "same");
  EXPECT_EQ(parsed->tensors[1].shape, (std::vector<std::int64_t>{2, 2}));
}

TEST(TorchPickleTest, RefusesSystemGlobalsNamingThem) {
  struct Case {
    std::string module, name, expected;
  };
  const std::vector<Case> cases{
      {"os", "system", "os.system"},
      {"posix", "system", "posix.system"},
      {"nt", "system", "nt.system"},
      {"os.path", "join", "os.path.join"},
      {"subprocess", "Popen", "subprocess.Popen"},
      {"builtins", "eval", "builtins.eval"},
      {"builtins", "exec", "builtins.exec"},
      {"builtins", "getattr", "builtins.getattr"},
      {"__builtin__", "__import__", "__builtin__.__import__"},
      {"sys", "modules", "sys.modules"},
      {"importlib", "import_module", "importlib.import_module"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    for (const bool stackGlobal : {false, true}) {
      const std::string name =
          stackGlobal ? text(c.module) + text(c.name) + "\x93" : global(c.module, c.name);
      Result<PickledStateDict> parsed =
          unpickleStateDict(pickle(dict({{"w", name + text("touch /tmp/x") + "\x85R"}})));
      ASSERT_FALSE(parsed.ok());
      EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
      EXPECT_NE(parsed.error().message.find("names the global " + c.expected), std::string::npos)
          << parsed.error().message;
      EXPECT_NE(parsed.error().message.find("nothing was executed"), std::string::npos);
      EXPECT_EQ(parsed.error().details.value("global", ""), c.expected);
    }
  }
  // A global that only resembles a refused module is merely opaque.
  EXPECT_TRUE(unpickleStateDict(pickle(dict({{"w", global("osmosis", "f") + ")R"}}))).ok());
}

void expectInvalid(const std::string& bytes, const std::string& fragment) {
  Result<PickledStateDict> parsed = unpickleStateDict(bytes);
  ASSERT_FALSE(parsed.ok()) << "expected an error containing: " << fragment;
  EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(parsed.error().message.find(fragment), std::string::npos) << parsed.error().message;
}

TEST(TorchPickleTest, RefusesMalformedPickles) {
  expectInvalid("", "ends before STOP");
  expectInvalid("\x80\x02}", "ends before STOP");
  expectInvalid("\x80\x02X\xff\xff\xff\x7f", "ends inside an argument");
  expectInvalid("\x80\x02" + global("torch", "x").substr(0, 7), "ends inside a GLOBAL");
  expectInvalid(pickle("i"), "opcode 0x69 at offset 2: this opcode is not accepted");
  expectInvalid(pickle("\x82\x01"), "opcode 0x82");  // EXT1
  expectInvalid("\x80\x09}.", "pickle protocol 9 is unknown");
  expectInvalid(pickle("0"), "stack underflow");
  expectInvalid(pickle("}(0"), "stack underflow");  // POP may not cross a MARK
  expectInvalid(pickle("h\x05"), "memo entry 5 was never stored");
  expectInvalid(pickle("t"), "no MARK on the stack");
  expectInvalid(pickle("}" + int1(1) + "a"), "APPEND on a dict");
  expectInvalid(pickle("]" + text("a") + int1(1) + "s"), "SETITEM on a list");
  expectInvalid(pickle("}(" + text("a") + "u"), "SETITEMS with an odd number");
  expectInvalid(pickle(int1(3) + ")R"), "REDUCE calls a int");
  expectInvalid(pickle(global("collections", "OrderedDict") + int1(1) + "R"),
                "REDUCE arguments are not a tuple");
  expectInvalid(pickle("]"), "its top level is a list, not a dict");
  expectInvalid(pickle("(" + text("storage") + int1(1) + "tQ"), "persistent id that is not");
}

TEST(TorchPickleTest, RefusesMalformedTensorArguments) {
  const std::string rebuild = global("torch._utils", "_rebuild_tensor_v2");
  expectInvalid(pickle(dict({{"w", rebuild + "(" + int1(1) + "tR"}})), "1 arguments");
  expectInvalid(pickle(dict({{"w", rebuild + "(" + int1(1) + int1(0) + ints({1}) + ints({1}) +
                                       "\x89N" + "tR"}})),
                "the first is not a storage");
  const std::string storage = "(" + text("storage") + global("torch", "FloatStorage") + text("0") +
                              text("cpu") + int1(4) + "tQ";
  expectInvalid(pickle(dict({{"w", rebuild + "(" + storage + int1(0) + ints({1, 2}) + ints({1}) +
                                       "\x89N" + "tR"}})),
                "size and stride are not tuples of the same length");
  expectInvalid(pickle(dict({{"w", rebuild + "(" + storage + int1(0) + "(J\xff\xff\xff\xfft" +
                                       ints({1}) + "\x89N" + "tR"}})),
                "a size or stride is not a non-negative int");
  expectInvalid(
      pickle(dict({{"w", global("torch._utils", "_rebuild_parameter") + "(" + int1(1) + "tR"}})),
      "_rebuild_parameter of something other than a tensor");
  expectInvalid(pickle(dict({{"w", tensor("ComplexFloatStorage", "0", 1, 0, {1}, {1})}})),
                "tensor \"w\": unsupported storage type torch.ComplexFloatStorage");
}

TEST(TorchPickleTest, SurvivesCyclesAndReadsIntegers) {
  // A list appended to itself, and LONG1 values of every length, including > 8 bytes (opaque).
  const std::string cycle = "]q\x00h\x00"s + "a";
  const std::string longs = "(\x8a\x00"s + "\x8a\x01\xff" +
                            "\x8a\x08\x01\x02\x03\x04\x05\x06\x07\x08" +
                            "\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09" + "t";
  Result<PickledStateDict> parsed =
      unpickleStateDict(pickle(dict({{"cycle", cycle}, {"longs", longs}})));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->skipped, (std::vector<std::string>{"cycle", "longs"}));
}

TEST(TorchPickleTest, NamesDtypes) {
  EXPECT_EQ(torchDtypeName(TorchDtype::kBF16), "BF16");
  EXPECT_EQ(torchDtypeSize(TorchDtype::kBF16), 2u);
  EXPECT_EQ(torchDtypeSize(TorchDtype::kF64), 8u);
  EXPECT_EQ(torchDtypeSize(TorchDtype::kBool), 1u);
  EXPECT_EQ(torchStorageDtype("torch.CharStorage"), TorchDtype::kI8);
  EXPECT_EQ(torchStorageDtype("torch.ByteStorage"), TorchDtype::kU8);
  EXPECT_EQ(torchStorageDtype("torch.QInt8Storage"), std::nullopt);
}

}  // namespace
}  // namespace deviceops::training
