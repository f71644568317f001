#include "training_formats/torch_pickle.h"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <unordered_map>
#include <utility>

namespace deviceops::training {
namespace {

struct DtypeEntry {
  TorchDtype dtype;
  std::string_view name;
  std::size_t size;
  std::string_view storageType;
};

constexpr std::array<DtypeEntry, 9> kDtypes{{
    {TorchDtype::kF32, "F32", 4, "torch.FloatStorage"},
    {TorchDtype::kF16, "F16", 2, "torch.HalfStorage"},
    {TorchDtype::kBF16, "BF16", 2, "torch.BFloat16Storage"},
    {TorchDtype::kF64, "F64", 8, "torch.DoubleStorage"},
    {TorchDtype::kI64, "I64", 8, "torch.LongStorage"},
    {TorchDtype::kI32, "I32", 4, "torch.IntStorage"},
    {TorchDtype::kI8, "I8", 1, "torch.CharStorage"},
    {TorchDtype::kU8, "U8", 1, "torch.ByteStorage"},
    {TorchDtype::kBool, "BOOL", 1, "torch.BoolStorage"},
}};

// Modules whose globals reach the system or the interpreter: a checkpoint never needs them,
// so naming one is refused outright (nothing is ever called either way).
constexpr std::array<std::string_view, 24> kRefusedModules{
    "os",         "posix", "nt",      "sys",    "subprocess",      "shutil",   "socket",
    "importlib",  "runpy", "pty",     "pickle", "_pickle",         "marshal",  "ctypes",
    "webbrowser", "code",  "codeop",  "signal", "multiprocessing", "tempfile", "pathlib",
    "io",         "_io",   "builtins"};
// The harmless constructors of builtins that pickles of ordinary data use.
constexpr std::array<std::string_view, 6> kHarmlessBuiltins{"set",     "frozenset", "bytearray",
                                                            "complex", "slice",     "range"};

enum class Kind {
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kBytes,
  kTuple,
  kList,
  kDict,
  kGlobal,
  kStorage,
  kTensor,
  kOpaque
};

std::string_view kindName(Kind kind) {
  switch (kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kGlobal:
      return "global";
    case Kind::kStorage:
      return "storage";
    case Kind::kTensor:
      return "tensor";
    case Kind::kOpaque:
      return "opaque object";
  }
  return "object";
}

using Ref = std::uint32_t;

// One node of the object graph. Fields are used by kind; containers hold Refs into the arena,
// so cycles (a list appended to itself) are harmless.
struct Object {
  Kind kind = Kind::kNone;
  std::int64_t integer = 0;  // kBool, kInt; kStorage: numel; kTensor: storage offset
  std::string text;          // kString, kBytes; kGlobal: "module.name"; kStorage: key
  std::string storageType;   // kStorage
  std::vector<Ref> items;    // kTuple, kList
  std::vector<std::pair<Ref, Ref>> entries;                 // kDict, in insertion order
  std::unordered_map<std::string, std::size_t> stringKeys;  // kDict: str key -> entries index
  Ref storage = 0;                                          // kTensor
  std::vector<std::int64_t> shape, stride;                  // kTensor
};

bool isRefused(std::string_view module, std::string_view name) {
  if (module == "__builtin__") module = "builtins";
  for (std::string_view refused : kRefusedModules) {
    if (module == refused || (module.size() > refused.size() && module.starts_with(refused) &&
                              module[refused.size()] == '.')) {
      if (module != "builtins") return true;
      for (std::string_view harmless : kHarmlessBuiltins) {
        if (name == harmless) return false;
      }
      return true;
    }
  }
  return false;
}

class Unpickler {
 public:
  explicit Unpickler(std::string_view pickle) : in_(pickle) {}

  // Runs to STOP; returns the top-level object.
  Result<Ref> run();
  const Object& at(Ref ref) const { return objects_[ref]; }

 private:
  Error fail(const std::string& message) const {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("not a valid torch checkpoint pickle: opcode 0x{:02x} at offset "
                                 "{}: {}",
                                 opcode_, opcodeOffset_, message));
  }
  Ref make(Object object) {
    objects_.push_back(std::move(object));
    return static_cast<Ref>(objects_.size() - 1);
  }
  Ref makeKind(Kind kind) {
    Object object;
    object.kind = kind;
    return make(std::move(object));
  }
  Ref makeInt(std::int64_t value, Kind kind = Kind::kInt) {
    Object object;
    object.kind = kind;
    object.integer = value;
    return make(std::move(object));
  }
  Ref makeText(Kind kind, std::string_view text) {
    Object object;
    object.kind = kind;
    object.text.assign(text);
    return make(std::move(object));
  }

  Result<std::string_view> take(std::size_t count) {
    if (count > in_.size() - pos_) return fail("the pickle ends inside an argument");
    const std::string_view bytes = in_.substr(pos_, count);
    pos_ += count;
    return bytes;
  }
  template <class T>
  Result<T> takeLittleEndian() {
    ASSIGN_OR_RETURN(const std::string_view bytes, take(sizeof(T)));
    T value = 0;
    for (std::size_t i = sizeof(T); i-- > 0;) {
      value = static_cast<T>((value << 8) | static_cast<unsigned char>(bytes[i]));
    }
    return value;
  }
  Result<std::string_view> takeLine() {
    const std::size_t end = in_.find('\n', pos_);
    if (end == std::string_view::npos) return fail("the pickle ends inside a GLOBAL name");
    const std::string_view line = in_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return line;
  }

  std::size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
  Result<Ref> pop() {
    if (stack_.size() <= fence()) return fail("stack underflow");
    const Ref ref = stack_.back();
    stack_.pop_back();
    return ref;
  }
  Result<Ref> top() const {
    if (stack_.size() <= fence()) return fail("stack underflow");
    return stack_.back();
  }
  Result<std::vector<Ref>> popToMark() {
    if (marks_.empty()) return fail("no MARK on the stack");
    std::vector<Ref> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()),
                           stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  Status memoize(std::uint32_t index) {
    ASSIGN_OR_RETURN(const Ref ref, top());
    memo_[index] = ref;
    return Status::success();
  }
  Status recall(std::uint32_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) return fail(fmt::format("memo entry {} was never stored", index));
    stack_.push_back(it->second);
    return Status::success();
  }
  Status pushTuple(std::vector<Ref> items) {
    Object tuple;
    tuple.kind = Kind::kTuple;
    tuple.items = std::move(items);
    stack_.push_back(make(std::move(tuple)));
    return Status::success();
  }
  Status pushTupleOf(std::size_t count) {
    std::vector<Ref> items(count);
    for (std::size_t i = count; i-- > 0;) {
      ASSIGN_OR_RETURN(items[i], pop());
    }
    return pushTuple(std::move(items));
  }
  Status pushLong(std::size_t length);
  Status pushGlobal(std::string_view module, std::string_view name);
  Status setItem(Ref dict, Ref key, Ref value);
  Status setItems(std::vector<Ref> pairs);
  Status append(std::vector<Ref> values);
  Status persistentLoad();
  Status reduce();
  Result<Ref> rebuildTensor(const std::string& function, const Object& args, bool v2);
  Status step(unsigned char opcode, bool& stop);

  std::string_view in_;
  std::size_t pos_ = 0;
  unsigned char opcode_ = 0;
  std::size_t opcodeOffset_ = 0;
  std::vector<Object> objects_;
  std::vector<Ref> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint32_t, Ref> memo_;
};

Status Unpickler::pushLong(std::size_t length) {
  ASSIGN_OR_RETURN(const std::string_view bytes, take(length));
  if (length > 8) {  // beyond int64: kept as an opaque number
    stack_.push_back(makeKind(Kind::kOpaque));
    return Status::success();
  }
  std::uint64_t value = 0;
  for (std::size_t i = length; i-- > 0;)
    value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  if (length > 0 && length < 8 && (static_cast<unsigned char>(bytes[length - 1]) & 0x80u) != 0) {
    value |= ~std::uint64_t{0} << (8 * length);  // sign extension
  }
  std::int64_t signedValue;
  std::memcpy(&signedValue, &value, sizeof signedValue);
  stack_.push_back(makeInt(signedValue));
  return Status::success();
}

Status Unpickler::pushGlobal(std::string_view module, std::string_view name) {
  const std::string full = fmt::format("{}.{}", module, name);
  if (isRefused(module, name)) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("refusing a torch checkpoint whose pickle names the global {}: "
                                 "a weights file never needs it (nothing was executed)",
                                 full),
                     {{"global", full}});
  }
  stack_.push_back(makeText(Kind::kGlobal, full));
  return Status::success();
}

Status Unpickler::setItem(Ref dict, Ref key, Ref value) {
  if (objects_[dict].kind == Kind::kOpaque) return Status::success();
  if (objects_[dict].kind != Kind::kDict) {
    return fail(fmt::format("SETITEM on a {}", kindName(objects_[dict].kind)));
  }
  Object& target = objects_[dict];
  if (objects_[key].kind == Kind::kString) {
    const auto [it, inserted] =
        target.stringKeys.emplace(objects_[key].text, target.entries.size());
    if (!inserted) {
      target.entries[it->second].second = value;
      return Status::success();
    }
  }
  target.entries.emplace_back(key, value);
  return Status::success();
}

Status Unpickler::setItems(std::vector<Ref> pairs) {
  if (pairs.size() % 2 != 0) return fail("SETITEMS with an odd number of items");
  ASSIGN_OR_RETURN(const Ref dict, top());
  for (std::size_t i = 0; i < pairs.size(); i += 2) {
    RETURN_IF_ERROR(setItem(dict, pairs[i], pairs[i + 1]));
  }
  return Status::success();
}

Status Unpickler::append(std::vector<Ref> values) {
  ASSIGN_OR_RETURN(const Ref list, top());
  if (objects_[list].kind == Kind::kOpaque) return Status::success();
  if (objects_[list].kind != Kind::kList) {
    return fail(fmt::format("APPEND on a {}", kindName(objects_[list].kind)));
  }
  auto& items = objects_[list].items;
  items.insert(items.end(), values.begin(), values.end());
  return Status::success();
}

// ('storage', <StorageType>, key, location, numel) -> a storage reference.
Status Unpickler::persistentLoad() {
  ASSIGN_OR_RETURN(const Ref pid, pop());
  const Object& id = objects_[pid];
  if (id.kind != Kind::kTuple || id.items.size() != 5 ||
      objects_[id.items[0]].kind != Kind::kString || objects_[id.items[0]].text != "storage" ||
      objects_[id.items[1]].kind != Kind::kGlobal || objects_[id.items[2]].kind != Kind::kString ||
      objects_[id.items[4]].kind != Kind::kInt || objects_[id.items[4]].integer < 0) {
    return fail("a persistent id that is not ('storage', <StorageType>, key, location, numel)");
  }
  Object storage;
  storage.kind = Kind::kStorage;
  storage.storageType = objects_[id.items[1]].text;
  storage.text = objects_[id.items[2]].text;
  storage.integer = objects_[id.items[4]].integer;
  stack_.push_back(make(std::move(storage)));
  return Status::success();
}

Result<Ref> Unpickler::rebuildTensor(const std::string& function, const Object& args, bool v2) {
  auto malformed = [&](std::string_view what) {
    return fail(fmt::format("{} with malformed arguments: {}", function, what));
  };
  if (v2 ? (args.items.size() != 6 && args.items.size() != 7) : args.items.size() != 4) {
    return malformed(fmt::format("{} arguments", args.items.size()));
  }
  const Object& storage = objects_[args.items[0]];
  const Object& offset = objects_[args.items[1]];
  const Object& size = objects_[args.items[2]];
  const Object& stride = objects_[args.items[3]];
  if (storage.kind != Kind::kStorage) return malformed("the first is not a storage");
  if (offset.kind != Kind::kInt || offset.integer < 0) {
    return malformed("the storage offset is not a non-negative int");
  }
  if (size.kind != Kind::kTuple || stride.kind != Kind::kTuple ||
      size.items.size() != stride.items.size()) {
    return malformed("size and stride are not tuples of the same length");
  }
  Object tensor;
  tensor.kind = Kind::kTensor;
  tensor.storage = args.items[0];
  tensor.integer = offset.integer;
  for (std::size_t i = 0; i < size.items.size(); ++i) {
    const Object& dim = objects_[size.items[i]];
    const Object& step = objects_[stride.items[i]];
    if (dim.kind != Kind::kInt || dim.integer < 0 || step.kind != Kind::kInt || step.integer < 0) {
      return malformed("a size or stride is not a non-negative int");
    }
    tensor.shape.push_back(dim.integer);
    tensor.stride.push_back(step.integer);
  }
  return make(std::move(tensor));
}

Status Unpickler::reduce() {
  ASSIGN_OR_RETURN(const Ref argsRef, pop());
  ASSIGN_OR_RETURN(const Ref callableRef, pop());
  const Kind callableKind = objects_[callableRef].kind;
  if (callableKind == Kind::kOpaque) {
    stack_.push_back(makeKind(Kind::kOpaque));
    return Status::success();
  }
  if (callableKind != Kind::kGlobal) {
    return fail(fmt::format("REDUCE calls a {}", kindName(callableKind)));
  }
  if (objects_[argsRef].kind != Kind::kTuple) return fail("REDUCE arguments are not a tuple");
  const std::string function = objects_[callableRef].text;
  const Object& args = objects_[argsRef];
  if (function == "collections.OrderedDict") {
    stack_.push_back(makeKind(Kind::kDict));
  } else if (function == "torch._utils._rebuild_tensor_v2" ||
             function == "torch._utils._rebuild_tensor") {
    ASSIGN_OR_RETURN(const Ref tensor, rebuildTensor(function, args, function.ends_with("_v2")));
    stack_.push_back(tensor);
  } else if (function == "torch._utils._rebuild_parameter") {
    if (args.items.empty() || objects_[args.items[0]].kind != Kind::kTensor) {
      return fail(function + " of something other than a tensor");
    }
    stack_.push_back(args.items[0]);
  } else {
    stack_.push_back(makeKind(Kind::kOpaque));  // never resolved, never called
  }
  return Status::success();
}

Status Unpickler::step(unsigned char opcode, bool& stop) {
  switch (opcode) {
    case 0x80: {  // PROTO
      ASSIGN_OR_RETURN(const auto version, takeLittleEndian<std::uint8_t>());
      if (version > 5) return fail(fmt::format("pickle protocol {} is unknown", version));
      return Status::success();
    }
    case 0x95:  // FRAME: an 8-byte length, irrelevant to a reader of the whole buffer
      return take(8).ok() ? Status::success() : Status(fail("the pickle ends inside FRAME"));
    case '.':  // STOP
      stop = true;
      return Status::success();
    case '(':  // MARK
      marks_.push_back(stack_.size());
      return Status::success();
    case '0':  // POP
      return pop().ok() ? Status::success() : Status(fail("stack underflow"));
    case '1':  // POP_MARK
      return popToMark().ok() ? Status::success() : Status(fail("no MARK on the stack"));
    case '2': {  // DUP
      ASSIGN_OR_RETURN(const Ref ref, top());
      stack_.push_back(ref);
      return Status::success();
    }
    case 'N':
      stack_.push_back(makeKind(Kind::kNone));
      return Status::success();
    case 0x88:  // NEWTRUE
    case 0x89:  // NEWFALSE
      stack_.push_back(makeInt(opcode == 0x88 ? 1 : 0, Kind::kBool));
      return Status::success();
    case 'J': {  // BININT
      ASSIGN_OR_RETURN(const auto value, takeLittleEndian<std::uint32_t>());
      stack_.push_back(makeInt(static_cast<std::int32_t>(value)));
      return Status::success();
    }
    case 'K': {  // BININT1
      ASSIGN_OR_RETURN(const auto value, takeLittleEndian<std::uint8_t>());
      stack_.push_back(makeInt(value));
      return Status::success();
    }
    case 'M': {  // BININT2
      ASSIGN_OR_RETURN(const auto value, takeLittleEndian<std::uint16_t>());
      stack_.push_back(makeInt(value));
      return Status::success();
    }
    case 0x8a: {  // LONG1
      ASSIGN_OR_RETURN(const auto length, takeLittleEndian<std::uint8_t>());
      return pushLong(length);
    }
    case 'G': {  // BINFLOAT, big-endian
      ASSIGN_OR_RETURN(const std::string_view bytes, take(8));
      std::uint64_t bits = 0;
      for (char byte : bytes) bits = (bits << 8) | static_cast<unsigned char>(byte);
      Object object;
      object.kind = Kind::kFloat;
      object.integer = static_cast<std::int64_t>(bits);
      stack_.push_back(make(std::move(object)));
      return Status::success();
    }
    case 'X':    // BINUNICODE
    case 'B': {  // BINBYTES
      ASSIGN_OR_RETURN(const auto length, takeLittleEndian<std::uint32_t>());
      ASSIGN_OR_RETURN(const std::string_view text, take(length));
      stack_.push_back(makeText(opcode == 'X' ? Kind::kString : Kind::kBytes, text));
      return Status::success();
    }
    case 0x8c:   // SHORT_BINUNICODE
    case 'U':    // SHORT_BINSTRING
    case 'C': {  // SHORT_BINBYTES
      ASSIGN_OR_RETURN(const auto length, takeLittleEndian<std::uint8_t>());
      ASSIGN_OR_RETURN(const std::string_view text, take(length));
      stack_.push_back(makeText(opcode == 'C' ? Kind::kBytes : Kind::kString, text));
      return Status::success();
    }
    case '}':
      stack_.push_back(makeKind(Kind::kDict));
      return Status::success();
    case ']':
      stack_.push_back(makeKind(Kind::kList));
      return Status::success();
    case ')':
      return pushTuple({});
    case 't': {  // TUPLE
      ASSIGN_OR_RETURN(std::vector<Ref> items, popToMark());
      return pushTuple(std::move(items));
    }
    case 0x85:
    case 0x86:
    case 0x87:  // TUPLE1, TUPLE2, TUPLE3
      return pushTupleOf(opcode - 0x84u);
    case 'a': {  // APPEND
      ASSIGN_OR_RETURN(const Ref value, pop());
      return append({value});
    }
    case 'e': {  // APPENDS
      ASSIGN_OR_RETURN(std::vector<Ref> values, popToMark());
      return append(std::move(values));
    }
    case 's': {  // SETITEM
      ASSIGN_OR_RETURN(const Ref value, pop());
      ASSIGN_OR_RETURN(const Ref key, pop());
      ASSIGN_OR_RETURN(const Ref dict, top());
      return setItem(dict, key, value);
    }
    case 'u': {  // SETITEMS
      ASSIGN_OR_RETURN(std::vector<Ref> pairs, popToMark());
      return setItems(std::move(pairs));
    }
    case 'q': {  // BINPUT
      ASSIGN_OR_RETURN(const auto index, takeLittleEndian<std::uint8_t>());
      return memoize(index);
    }
    case 'r': {  // LONG_BINPUT
      ASSIGN_OR_RETURN(const auto index, takeLittleEndian<std::uint32_t>());
      return memoize(index);
    }
    case 0x94:  // MEMOIZE
      return memoize(static_cast<std::uint32_t>(memo_.size()));
    case 'h': {  // BINGET
      ASSIGN_OR_RETURN(const auto index, takeLittleEndian<std::uint8_t>());
      return recall(index);
    }
    case 'j': {  // LONG_BINGET
      ASSIGN_OR_RETURN(const auto index, takeLittleEndian<std::uint32_t>());
      return recall(index);
    }
    case 'c': {  // GLOBAL
      ASSIGN_OR_RETURN(const std::string_view module, takeLine());
      ASSIGN_OR_RETURN(const std::string_view name, takeLine());
      return pushGlobal(module, name);
    }
    case 0x93: {  // STACK_GLOBAL
      ASSIGN_OR_RETURN(const Ref name, pop());
      ASSIGN_OR_RETURN(const Ref module, pop());
      if (objects_[name].kind != Kind::kString || objects_[module].kind != Kind::kString) {
        return fail("STACK_GLOBAL of something other than two strings");
      }
      const std::string moduleText = objects_[module].text;
      const std::string nameText = objects_[name].text;
      return pushGlobal(moduleText, nameText);
    }
    case 'R':
      return reduce();
    case 'b': {  // BUILD: the state is discarded, the object stays
      ASSIGN_OR_RETURN(const Ref state, pop());
      (void)state;
      return top().ok() ? Status::success() : Status(fail("stack underflow"));
    }
    case 0x81: {  // NEWOBJ
      ASSIGN_OR_RETURN(const Ref args, pop());
      ASSIGN_OR_RETURN(const Ref cls, pop());
      (void)args;
      const Kind kind = objects_[cls].kind;
      if (kind != Kind::kGlobal && kind != Kind::kOpaque) {
        return fail(fmt::format("NEWOBJ of a {}", kindName(kind)));
      }
      stack_.push_back(makeKind(Kind::kOpaque));
      return Status::success();
    }
    case 'Q':
      return persistentLoad();
    default:
      return fail("this opcode is not accepted in a torch checkpoint");
  }
}

Result<Ref> Unpickler::run() {
  bool stop = false;
  while (!stop) {
    if (pos_ >= in_.size()) {
      return makeError(ErrorCode::kInvalidArgument,
                       "not a valid torch checkpoint pickle: it ends before STOP");
    }
    opcodeOffset_ = pos_;
    opcode_ = static_cast<unsigned char>(in_[pos_++]);
    RETURN_IF_ERROR(step(opcode_, stop));
  }
  return pop();
}

Error stateDictError(const std::string& name, const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument,
                   fmt::format("not a valid torch checkpoint: tensor \"{}\": {}", name, message),
                   {{"tensor", name}});
}

}  // namespace

std::string_view torchDtypeName(TorchDtype dtype) {
  for (const DtypeEntry& entry : kDtypes) {
    if (entry.dtype == dtype) return entry.name;
  }
  return "F32";
}

std::size_t torchDtypeSize(TorchDtype dtype) {
  for (const DtypeEntry& entry : kDtypes) {
    if (entry.dtype == dtype) return entry.size;
  }
  return 4;
}

std::optional<TorchDtype> torchStorageDtype(std::string_view storageType) {
  for (const DtypeEntry& entry : kDtypes) {
    if (entry.storageType == storageType) return entry.dtype;
  }
  return std::nullopt;
}

Result<PickledStateDict> unpickleStateDict(std::string_view pickle) {
  Unpickler unpickler(pickle);
  ASSIGN_OR_RETURN(const Ref rootRef, unpickler.run());
  const Object* dict = &unpickler.at(rootRef);
  if (dict->kind != Kind::kDict) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("not a valid torch checkpoint: its top level is a {}, not a dict "
                                 "of tensors",
                                 kindName(dict->kind)));
  }
  PickledStateDict result;
  if (const auto it = dict->stringKeys.find("state_dict"); it != dict->stringKeys.end()) {
    const Object& nested = unpickler.at(dict->entries[it->second].second);
    if (nested.kind == Kind::kDict) {
      dict = &nested;
      result.nested = true;
    }
  }
  for (const auto& [keyRef, valueRef] : dict->entries) {
    const Object& key = unpickler.at(keyRef);
    const Object& value = unpickler.at(valueRef);
    const std::string name =
        key.kind == Kind::kString ? key.text : fmt::format("<{} key>", kindName(key.kind));
    if (key.kind != Kind::kString || value.kind != Kind::kTensor) {
      result.skipped.push_back(name);
      continue;
    }
    const Object& storage = unpickler.at(value.storage);
    const std::optional<TorchDtype> dtype = torchStorageDtype(storage.storageType);
    if (!dtype) {
      return stateDictError(name, fmt::format("unsupported storage type {} (supported: Float, "
                                              "Half, BFloat16, Double, Long, Int, Char, Byte, "
                                              "Bool)",
                                              storage.storageType));
    }
    PickledTensor tensor;
    tensor.name = name;
    tensor.storageKey = storage.text;
    tensor.storageType = storage.storageType;
    tensor.dtype = *dtype;
    tensor.storageNumel = static_cast<std::uint64_t>(storage.integer);
    tensor.storageOffset = value.integer;
    tensor.shape = value.shape;
    tensor.stride = value.stride;
    result.tensors.push_back(std::move(tensor));
  }
  return result;
}

}  // namespace deviceops::training
