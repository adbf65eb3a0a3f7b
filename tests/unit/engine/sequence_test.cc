// Sequences, optionals and string tensors (engine/graph/object.h): their operators inside models
// with tensor inputs and outputs, loops carrying sequences, and malformed models refused with a
// named reason (type mismatches, positions out of range, wrong element types), never a crash.
#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <gtest/gtest.h>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT, I64 = onnx::TensorProto::INT64,
              STR = onnx::TensorProto::STRING;

std::vector<float> floats(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

Result<std::vector<NamedTensor>> run(const std::vector<uint8_t>& bytes,
                                     std::vector<NamedTensor> inputs) {
  MOSS_ASSIGN_OR_RETURN(auto model, CompiledModel::compile(bytes));
  ExecutionContext ctx(model);
  return ctx.run(inputs);
}

// y = ConcatFromSequence(SequenceErase(SplitToSequence(x))), n = SequenceLength of the split.
std::vector<uint8_t> split_erase_concat_model() {
  ModelBuilder b(17);
  b.input("x", F, {4, 2}).output("y").output("n", I64);
  b.node("SplitToSequence", {"x"}, {"s"});  // four [1, 2] slices
  b.node("SequenceLength", {"s"}, {"n"});
  b.node("SequenceErase", {"s"}, {"e"});    // drops the last
  auto& c = b.node("ConcatFromSequence", {"e"}, {"y"});
  ModelBuilder::attr_i(c, "axis", 0);
  return b.bytes();
}

TEST(EngineSequence, SplitEraseConcatAndLengthInsideAModel) {
  auto out = run(split_erase_concat_model(),
                 {{"x", Tensor::from_vector<float>({4, 2}, {1, 2, 3, 4, 5, 6, 7, 8})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ((*out)[0].tensor.shape(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(floats((*out)[0].tensor), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ((*out)[1].tensor.data<int64_t>()[0], 4);
}

// y = SequenceAt(SplitToSequence(x), pos).
std::vector<uint8_t> sequence_at_model() {
  ModelBuilder b(17);
  b.input("x", F, {3}).input("pos", I64, {}).output("y");
  b.node("SplitToSequence", {"x"}, {"s"});
  b.node("SequenceAt", {"s", "pos"}, {"y"}, "pick");
  return b.bytes();
}

TEST(EngineSequence, SequenceAtChecksThePositionAgainstTheLength) {
  auto model = CompiledModel::compile(sequence_at_model()).value_or_die();
  ExecutionContext ctx(model);
  Tensor x = Tensor::from_vector<float>({3}, {10, 20, 30});
  for (int64_t pos : {-3, 2}) {
    auto ok = ctx.run(std::vector<NamedTensor>{{"x", x}, {"pos", Tensor::from_vector<int64_t>({}, {pos})}});
    ASSERT_TRUE(ok.ok()) << ok.status().message();
    EXPECT_EQ(floats((*ok)[0].tensor), (std::vector<float>{pos < 0 ? 10.0f : 30.0f}));
  }
  for (int64_t pos : {int64_t{3}, int64_t{-4}, int64_t{1} << 62}) {
    auto bad = ctx.run(std::vector<NamedTensor>{{"x", x}, {"pos", Tensor::from_vector<int64_t>({}, {pos})}});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), ErrorCode::kOutOfRange);
    EXPECT_NE(bad.status().message().find("node 'pick' (SequenceAt): position"), std::string::npos)
        << bad.status().message();
  }
}

TEST(EngineSequence, SequencesAreBoundedInLength) {
  ModelBuilder b(17);
  b.input("x", F, {70000}).output("n", I64);
  b.node("SplitToSequence", {"x"}, {"s"}, "split");
  b.node("SequenceLength", {"s"}, {"n"});
  auto out = run(b.bytes(), {{"x", Tensor::from_vector<float>({70000}, std::vector<float>(70000))}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(out.status().message().find("node 'split' (SplitToSequence): a sequence of more than "
                                        "65536 elements"),
            std::string::npos)
      << out.status().message();
}

TEST(EngineSequence, ElementsOfDifferentTypesAreRefused) {
  ModelBuilder b(17);
  b.input("x", F, {2}).input("i", I64, {2}).output("y");
  b.node("SequenceConstruct", {"x", "i"}, {"s"}, "mixed");
  b.node("ConcatFromSequence", {"s"}, {"y"});
  auto out = run(b.bytes(), {{"x", Tensor::from_vector<float>({2}, {1, 2})},
                             {"i", Tensor::from_vector<int64_t>({2}, {1, 2})}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find(
                "node 'mixed' (SequenceConstruct): element of type tensor(int64) in a sequence "
                "of tensor(float32)"),
            std::string::npos)
      << out.status().message();
}

TEST(EngineSequence, InsertingTheWrongElementTypeIsRefused) {
  ModelBuilder b(17);
  b.input("x", F, {2}).output("y");
  auto& e = b.node("SequenceEmpty", {}, {"s"});
  ModelBuilder::attr_i(e, "dtype", I64);
  b.node("SequenceInsert", {"s", "x"}, {"t"}, "insert");
  b.node("ConcatFromSequence", {"t"}, {"y"});
  auto out = run(b.bytes(), {{"x", Tensor::from_vector<float>({2}, {1, 2})}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("node 'insert' (SequenceInsert): element of type "
                                        "tensor(float32) in a sequence of tensor(int64)"),
            std::string::npos)
      << out.status().message();
}

TEST(EngineSequence, KindMismatchesNameTheNodeAndTheType) {
  {  // a tensor where a sequence is expected
    ModelBuilder b(17);
    b.input("x", F, {2}).input("pos", I64, {}).output("y");
    b.node("SequenceAt", {"x", "pos"}, {"y"}, "at");
    auto out = run(b.bytes(), {{"x", Tensor::from_vector<float>({2}, {1, 2})},
                               {"pos", Tensor::from_vector<int64_t>({}, {0})}});
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.status().message().find("node 'at' (SequenceAt): input 0 must be a sequence, "
                                          "got tensor(float32)"),
              std::string::npos)
        << out.status().message();
  }
  {  // a sequence where a tensor is expected
    ModelBuilder b(17);
    b.input("x", F, {2}).output("y");
    b.node("SequenceConstruct", {"x"}, {"s"});
    b.node("Relu", {"s"}, {"y"}, "relu");
    auto out = run(b.bytes(), {{"x", Tensor::from_vector<float>({2}, {1, 2})}});
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.status().message().find("node 'relu' (Relu): input 0 is a seq(tensor(float32))"),
              std::string::npos)
        << out.status().message();
  }
  {  // a sequence as a model output
    ModelBuilder b(17);
    b.input("x", F, {2}).output("s");
    b.node("SequenceConstruct", {"x"}, {"s"});
    auto out = run(b.bytes(), {{"x", Tensor::from_vector<float>({2}, {1, 2})}});
    ASSERT_FALSE(out.ok());
    EXPECT_NE(out.status().message().find("output 's' is a seq(tensor(float32))"), std::string::npos)
        << out.status().message();
  }
}

TEST(EngineSequence, NonTensorModelInputsAreRefusedAtCompileUnlessAllowed) {
  ModelBuilder b(17);
  auto* in = b.graph().add_input();
  in->set_name("seq_in");
  in->mutable_type()->mutable_sequence_type()->mutable_elem_type()->mutable_tensor_type()
      ->set_elem_type(F);
  b.output("n", I64);
  b.node("SequenceLength", {"seq_in"}, {"n"});
  auto refused = CompiledModel::compile(b.bytes());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kUnimplemented);
  EXPECT_NE(refused.status().message().find("model input 'seq_in' is a seq(tensor(float32))"),
            std::string::npos)
      << refused.status().message();

  CompileOptions allow;
  allow.allow_non_tensor_io = true;
  auto model = CompiledModel::compile(b.bytes(), allow).value_or_die();
  ASSERT_TRUE(model->inputs()[0].object_type.has_value());
  ExecutionContext ctx(model);
  auto t = std::make_shared<const Tensor>(Tensor::from_vector<float>({1}, {1}));
  auto seq = sequence_object({tensor_object(t), tensor_object(t)}, TensorType{});
  auto out = ctx.run_objects(std::vector<NamedObject>{{"seq_in", seq}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ((*out)[0].value->tensor->data<int64_t>()[0], 2);
  // A tensor where the model declares a sequence.
  auto wrong = ctx.run_objects(std::vector<NamedObject>{{"seq_in", tensor_object(t)}});
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("input 'seq_in' is a tensor(float32), the model "
                                          "expects seq(tensor(float32))"),
            std::string::npos)
      << wrong.status().message();
}

// A Loop carrying a sequence: y = ConcatFromSequence of [0, 1, ..., M-1] inserted one by one.
TEST(EngineSequence, LoopCarriesASequence) {
  ModelBuilder body;
  body.input("i", I64, {}).input("cond", onnx::TensorProto::BOOL, {});
  auto* sin = body.graph().add_input();
  sin->set_name("s_in");
  sin->mutable_type()->mutable_sequence_type()->mutable_elem_type()->mutable_tensor_type()
      ->set_elem_type(I64);
  body.output("cond_out", onnx::TensorProto::BOOL);
  body.graph().add_output()->set_name("s_out");
  body.node("Identity", {"cond"}, {"cond_out"});
  body.init_i("one", {1}, {1});
  body.node("Reshape", {"i", "one"}, {"i1"});
  body.node("SequenceInsert", {"s_in", "i1"}, {"s_out"});
  ModelBuilder b(17);
  b.input("m", I64, {}).output("y", I64);
  auto& e = b.node("SequenceEmpty", {}, {"s0"});
  ModelBuilder::attr_i(e, "dtype", I64);
  auto& loop = b.node("Loop", {"m", "", "s0"}, {"s"});
  ModelBuilder::attr_g(loop, "body", body.graph());
  auto& c = b.node("ConcatFromSequence", {"s"}, {"y"});
  ModelBuilder::attr_i(c, "axis", 0);
  auto out = run(b.bytes(), {{"m", Tensor::from_vector<int64_t>({}, {4})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const Tensor& y = (*out)[0].tensor;
  EXPECT_EQ(std::vector<int64_t>(y.data<int64_t>(), y.data<int64_t>() + y.numel()),
            (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST(EngineSequence, OptionalWrapsAndUnwraps) {
  ModelBuilder b(18);
  b.input("x", F, {2}).output("y").output("has", onnx::TensorProto::BOOL);
  b.node("Optional", {"x"}, {"o"});
  b.node("OptionalHasElement", {"o"}, {"has"});
  b.node("OptionalGetElement", {"o"}, {"y"});
  auto out = run(b.bytes(), {{"x", Tensor::from_vector<float>({2}, {3, 4})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(floats((*out)[0].tensor), (std::vector<float>{3, 4}));
  EXPECT_TRUE((*out)[1].tensor.data<bool>()[0]);
}

TEST(EngineStrings, CastThroughStringsAndBack) {
  ModelBuilder b(17);
  b.input("x", F, {3}).output("y");
  auto& to_s = b.node("Cast", {"x"}, {"s"});
  ModelBuilder::attr_i(to_s, "to", STR);
  auto& back = b.node("Cast", {"s"}, {"y"});
  ModelBuilder::attr_i(back, "to", F);
  auto out = run(b.bytes(), {{"x", Tensor::from_vector<float>({3}, {0.1f, -2.5f, 1e30f})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(floats((*out)[0].tensor), (std::vector<float>{0.1f, -2.5f, 1e30f}));
}

TEST(EngineStrings, AStringThatIsNotANumberIsRefusedWithoutItsText) {
  ModelBuilder b(17);
  b.input("x", F, {2}).output("y", I64);
  auto& to_s = b.node("Cast", {"x"}, {"s"});
  ModelBuilder::attr_i(to_s, "to", STR);
  auto& back = b.node("Cast", {"s"}, {"y"}, "to_int");
  ModelBuilder::attr_i(back, "to", I64);
  auto out = run(b.bytes(), {{"x", Tensor::from_vector<float>({2}, {4, 1.25f})}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("node 'to_int' (Cast): element 1 is not a number"),
            std::string::npos)
      << out.status().message();
  EXPECT_EQ(out.status().message().find("1.25"), std::string::npos);
}

TEST(EngineStrings, AStringConstantFeedsACast) {
  ModelBuilder b(17);
  b.input("x", F, {2}).output("y");
  auto& c = b.node("Constant", {}, {"s"});
  auto* a = c.add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(STR);
  a->mutable_t()->add_dims(2);
  a->mutable_t()->add_string_data("3");
  a->mutable_t()->add_string_data("-0.5");
  auto& cast = b.node("Cast", {"s"}, {"n"});
  ModelBuilder::attr_i(cast, "to", F);
  b.node("Add", {"x", "n"}, {"y"});
  auto out = run(b.bytes(), {{"x", Tensor::from_vector<float>({2}, {1, 1})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(floats((*out)[0].tensor), (std::vector<float>{4, 0.5f}));
}

TEST(EngineStrings, StringNormalizerFiltersAndChangesCase) {
  ModelBuilder b(17);
  auto* in = b.graph().add_input();
  in->set_name("words");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(STR);
  b.output("out", STR);
  auto& n = b.node("StringNormalizer", {"words"}, {"out"});
  ModelBuilder::attr_s(n, "case_change_action", "UPPER");
  auto* stop = n.add_attribute();
  stop->set_name("stopwords");
  stop->set_type(onnx::AttributeProto::STRINGS);
  stop->add_strings("monday");
  CompileOptions allow;
  allow.allow_non_tensor_io = true;
  auto model = CompiledModel::compile(b.bytes(), allow).value_or_die();
  ExecutionContext ctx(model);
  auto words = strings_object(StringTensor{{3}, {"Monday", "tuesday", "x1"}});
  auto out = ctx.run_objects(std::vector<NamedObject>{{"words", words}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ((*out)[0].value->kind, Object::Kind::kStrings);
  EXPECT_EQ((*out)[0].value->strings->data, (std::vector<std::string>{"TUESDAY", "X1"}));
}

TEST(EngineStrings, TfIdfVectorizerCountsPooledNgrams) {
  // Pool: unigrams {2, 3}, bigram (2, 3); skip up to 1 also counts 2 _ 3.
  ModelBuilder b(9);
  b.input("x", I64, {6}).output("y");
  auto& n = b.node("TfIdfVectorizer", {"x"}, {"y"});
  ModelBuilder::attr_s(n, "mode", "TF");
  ModelBuilder::attr_i(n, "min_gram_length", 1);
  ModelBuilder::attr_i(n, "max_gram_length", 2);
  ModelBuilder::attr_i(n, "max_skip_count", 1);
  ModelBuilder::attr_ints(n, "ngram_counts", {0, 2});
  ModelBuilder::attr_ints(n, "ngram_indexes", {0, 1, 2});
  ModelBuilder::attr_ints(n, "pool_int64s", {2, 3, 2, 3});
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  ExecutionContext ctx(model);
  auto out = ctx.run(std::vector<NamedTensor>{
      {"x", Tensor::from_vector<int64_t>({6}, {2, 3, 5, 2, 4, 3})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  // 2 twice, 3 twice; (2,3) adjacent once and with one skipped (2,_,3) once.
  EXPECT_EQ(floats((*out)[0].tensor), (std::vector<float>{2, 2, 2}));
  EXPECT_TRUE(ctx.plan()->tail.empty());  // integer tokens: a plain planned step
}

// A model with string inputs a and b (shapes given) for the string stand-in tests.
ModelBuilder string_model(std::vector<std::pair<std::string, std::vector<int64_t>>> inputs) {
  ModelBuilder b(19);
  for (const auto& [name, dims] : inputs) {
    auto* in = b.graph().add_input();
    in->set_name(name);
    auto* tt = in->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(STR);
    for (int64_t d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
  }
  return b;
}

Result<std::vector<NamedObject>> run_strings(ModelBuilder& b, std::vector<NamedObject> in) {
  CompileOptions allow;
  allow.allow_non_tensor_io = true;
  MOSS_ASSIGN_OR_RETURN(auto model, CompiledModel::compile(b.bytes(), allow));
  ExecutionContext ctx(model);
  return ctx.run_objects(in);
}

TEST(EngineStrings, GatherConcatAndReshapeMoveStrings) {
  // A vocabulary lookup (Gather with negative indices), then Concat with another string tensor
  // and a Reshape: the tensor kernels' own checks and semantics, on strings.
  ModelBuilder b = string_model({{"vocab", {4}}, {"tail", {2}}});
  b.output("words", STR).output("grid", STR);
  b.init_i("ids", {4}, {2, 0, -1, 2});
  b.init_i("shape", {2}, {3, 2});
  b.node("Gather", {"vocab", "ids"}, {"words"});
  ModelBuilder::attr_i(b.node("Concat", {"words", "tail"}, {"all"}), "axis", 0);
  b.node("Reshape", {"all", "shape"}, {"grid"});
  auto out = run_strings(b, {{"vocab", strings_object(StringTensor{{4}, {"the", "cat", "sat", "down"}})},
                             {"tail", strings_object(StringTensor{{2}, {"", "end"}})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ((*out)[0].value->strings->data, (std::vector<std::string>{"sat", "the", "down", "sat"}));
  EXPECT_EQ((*out)[1].value->strings->shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ((*out)[1].value->strings->data,
            (std::vector<std::string>{"sat", "the", "down", "sat", "", "end"}));
  // An index out of range fails like Gather on numbers, naming the node.
  ModelBuilder c = string_model({{"vocab", {2}}});
  c.output("w", STR);
  c.init_i("ids", {1}, {5});
  c.node("Gather", {"vocab", "ids"}, {"w"}, "lookup");
  auto bad = run_strings(c, {{"vocab", strings_object(StringTensor{{2}, {"a", "b"}})}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'lookup' (Gather)"), std::string::npos) << bad.status().message();
}

TEST(EngineStrings, EqualComparesStringsWithBroadcasting) {
  ModelBuilder b = string_model({{"a", {2, 2}}, {"b", {2}}});
  b.output("eq", onnx::TensorProto::BOOL).output("n", I64);
  b.node("Equal", {"a", "b"}, {"eq"});
  b.node("Size", {"a"}, {"n"});
  auto out = run_strings(b, {{"a", strings_object(StringTensor{{2, 2}, {"x", "yy", "yy", "x"}})},
                             {"b", strings_object(StringTensor{{2}, {"x", "y"}})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const Tensor& eq = *(*out)[0].value->tensor;
  EXPECT_EQ(std::vector<bool>(eq.data<bool>(), eq.data<bool>() + 4), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ((*out)[1].value->tensor->data<int64_t>()[0], 4);
}

TEST(EngineStrings, MixingStringsAndNumbersIsRefusedNamingTheInput) {
  ModelBuilder b = string_model({{"a", {2}}});
  b.input("x", I64, {2}).output("y", STR);
  ModelBuilder::attr_i(b.node("Concat", {"a", "x"}, {"y"}, "cat"), "axis", 0);
  auto out = run_strings(b, {{"a", strings_object(StringTensor{{2}, {"p", "q"}})},
                             {"x", tensor_object(std::make_shared<const Tensor>(
                                       Tensor::from_vector<int64_t>({2}, {1, 2})))}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("'cat' (Concat): input 1 is a tensor(int64), expected a string tensor like input 0"),
            std::string::npos)
      << out.status().message();
}

TEST(EngineSequence, TensorOnlyModelsKeepAnEmptyTail) {
  // Cast and Identity have object variants; on numbers they stay planned arena steps.
  ModelBuilder b(17);
  b.input("x", F, {1, 3, 8, 8}).output("y", I64);
  b.init_f("w", {4, 3, 3, 3}, std::vector<float>(108, 0.1f));
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("Relu", {"c"}, {"r"});
  b.node("Identity", {"r"}, {"i"});
  auto& cast = b.node("Cast", {"i"}, {"y"});
  ModelBuilder::attr_i(cast, "to", I64);
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  ExecutionContext ctx(model);
  auto out = ctx.run(std::vector<NamedTensor>{
      {"x", Tensor::from_vector<float>({1, 3, 8, 8}, std::vector<float>(192, 1.0f))}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_NE(ctx.plan(), nullptr);
  EXPECT_TRUE(ctx.plan()->tail.empty());
}

}  // namespace
}  // namespace moss::engine
