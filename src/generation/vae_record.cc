#include "generation/vae_record.h"

namespace deviceops::generation {

nlohmann::json toJson(const VaeRecord& record) {
  return {{"name", record.name},
          {"source", record.source},
          {"keyFormat", record.keyFormat},
          {"prefix", record.prefix},
          {"tensors", record.tensors},
          {"parameters", record.parameters},
          {"dtypes", record.dtypes},
          {"decoder", toJson(record.decoder)},
          {"encoder", record.encoder ? toJson(*record.encoder) : nlohmann::json(nullptr)},
          {"decoderPatched", record.decoderPatched},
          {"encoderPatched", record.encoderPatched},
          {"patchMs", record.patchMs},
          {"createdMs", std::chrono::duration_cast<std::chrono::milliseconds>(
                            record.createdAt.time_since_epoch())
                            .count()},
          {"quality", record.quality}};
}

Result<VaeRecord> vaeRecordFromJson(const nlohmann::json& json) {
  try {
    VaeRecord record;
    record.name = json.at("name").get<std::string>();
    record.source = json.value("source", nlohmann::json::object());
    record.keyFormat = json.value("keyFormat", "diffusers");
    record.prefix = json.value("prefix", "");
    record.tensors = json.value("tensors", std::size_t{0});
    record.parameters = json.value("parameters", std::uint64_t{0});
    record.dtypes = json.value("dtypes", std::map<std::string, std::size_t>{});
    ASSIGN_OR_RETURN(record.decoder, componentFromJson(json.at("decoder")));
    if (json.contains("encoder") && !json.at("encoder").is_null()) {
      ASSIGN_OR_RETURN(Component encoder, componentFromJson(json.at("encoder")));
      record.encoder = std::move(encoder);
    }
    record.decoderPatched = json.value("decoderPatched", std::size_t{0});
    record.encoderPatched = json.value("encoderPatched", std::size_t{0});
    record.patchMs = json.value("patchMs", 0.0);
    record.createdAt = std::chrono::system_clock::time_point(
        std::chrono::milliseconds(json.value("createdMs", std::int64_t{0})));
    record.quality = json.value("quality", nlohmann::json(nullptr));
    return record;
  } catch (const nlohmann::json::exception& error) {
    return makeError(ErrorCode::kInternal,
                     std::string("stored VAE does not parse: ") + error.what());
  }
}

}  // namespace deviceops::generation
