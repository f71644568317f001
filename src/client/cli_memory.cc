// deviceops mem alloc|free|status|list
#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "client/cli.h"
#include "client/cli_commands.h"
#include "client/table.h"

namespace deviceops::client {
namespace {

using Json = nlohmann::json;
using Entries = std::vector<std::pair<std::string, std::string>>;

std::string bytesText(const Json& object, std::string_view key) {
  return formatBytes(bytesAt(object, key));
}

struct AllocOptions {
  std::string deviceId;
  std::string size;
  std::string label;
  std::uint64_t ttlSeconds = 0;
  bool pinned = false;
  bool verify = false;
};

int allocate(CliSession& session, const AllocOptions& options) {
  Json body = {{"deviceId", options.deviceId}};
  // Plain digits are bytes; anything else ("512MiB") is parsed by the server.
  if (!options.size.empty() && options.size.find_first_not_of("0123456789") == std::string::npos) {
    body["sizeBytes"] = std::stoull(options.size);
  } else {
    body["size"] = options.size;
  }
  if (!options.label.empty()) body["label"] = options.label;
  if (options.ttlSeconds > 0) body["ttlSeconds"] = options.ttlSeconds;
  if (options.pinned) body["pinned"] = true;
  if (options.verify) body["verify"] = true;
  auto result = session.sendJson("POST", "/api/memory/allocate", body);
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  Entries entries = {{"id", stringAt(*result, "id")},
                     {"device", stringAt(*result, "deviceId")},
                     {"size", bytesText(*result, "sizeBytes")},
                     {"block", bytesText(*result, "blockBytes")},
                     {"allocator", stringAt(*result, "allocator")},
                     {"fromPool", scalarText(memberAt(*result, "fromPool"))},
                     {"expiresAt", stringAt(*result, "expiresAt")}};
  const Json& verify = memberAt(*result, "verify");
  if (verify.is_object()) {
    entries.emplace_back("verify", memberAt(verify, "passed") == true ? "passed" : "FAILED");
    entries.emplace_back("verify.errors", scalarText(memberAt(verify, "errors")));
    entries.emplace_back("verify.write", formatBytes(static_cast<std::uint64_t>(
                                             numberAt(verify, "writeBytesPerSecond").value_or(0))) +
                                             "/s");
    entries.emplace_back("verify.read", formatBytes(static_cast<std::uint64_t>(
                                            numberAt(verify, "readBytesPerSecond").value_or(0))) +
                                            "/s");
  }
  if (!stringAt(*result, "note").empty()) entries.emplace_back("note", stringAt(*result, "note"));
  session.out() << renderKeyValues(entries);
  return kExitOk;
}

int release(CliSession& session, const std::string& id) {
  auto result = session.sendJson("DELETE", "/api/memory/" + percentEncode(id), nullptr);
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  session.out() << fmt::format("released {} ({} on {})\n", stringAt(*result, "id"),
                               bytesText(*result, "sizeBytes"), stringAt(*result, "deviceId"));
  return kExitOk;
}

int status(CliSession& session, const std::string& deviceId) {
  auto result = session.getJson("/api/memory/" + percentEncode(deviceId) + "/status");
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  Entries entries = {{"device", stringAt(*result, "deviceId")},
                     {"allocator", stringAt(*result, "allocator")},
                     {"total", bytesText(*result, "totalBytes")},
                     {"driver used", bytesText(*result, "driverUsedBytes")},
                     {"driver free", bytesText(*result, "driverFreeBytes")},
                     {"budget", bytesText(*result, "budgetBytes")},
                     {"held", bytesText(*result, "heldBytes")},
                     {"available", bytesText(*result, "availableBytes")},
                     {"allocations", scalarText(memberAt(*result, "allocationCount"))}};
  const Json& byKind = memberAt(*result, "heldBytesByKind");
  if (byKind.is_object()) {
    for (const auto& [kind, bytes] : byKind.items()) {
      entries.emplace_back("held." + kind, formatBytes(bytesAt(byKind, kind)));
    }
  }
  const Json& pool = memberAt(*result, "pool");
  entries.emplace_back("pool", stringAt(*result, "poolStrategy"));
  for (const char* key :
       {"reservedBytes", "inUseBytes", "cachedBytes", "largestCachedBlockBytes"}) {
    entries.emplace_back(std::string("pool.") + key, bytesText(pool, key));
  }
  entries.emplace_back("pool.fragmentation", formatRatio(numberAt(pool, "fragmentationRatio")));
  entries.emplace_back("pool.cacheHits", scalarText(memberAt(pool, "cacheHits")));
  session.out() << renderKeyValues(entries);
  return kExitOk;
}

struct ListOptions {
  std::string deviceId;
  std::string label;
  std::string kind;
  std::string state;
};

int list(CliSession& session, const ListOptions& options) {
  std::string query;
  const auto add = [&](const char* name, const std::string& value) {
    if (!value.empty())
      query += (query.empty() ? "?" : "&") + std::string(name) + "=" + percentEncode(value);
  };
  add("deviceId", options.deviceId);
  add("label", options.label);
  add("kind", options.kind);
  add("state", options.state);
  auto result = session.getJson("/api/memory/allocations" + query);
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  Table table({{"ID"},
               {"DEVICE"},
               {"SIZE", Align::kRight},
               {"KIND"},
               {"LABEL", Align::kLeft, 24},
               {"STATE"},
               {"CREATED"},
               {"EXPIRES"},
               {"REASON"}});
  const Json& allocations = memberAt(*result, "allocations");
  if (allocations.is_array()) {
    for (const Json& a : allocations) {
      table.addRow({stringAt(a, "id"), stringAt(a, "deviceId"), bytesText(a, "sizeBytes"),
                    stringAt(a, "kind"), stringAt(a, "label"), stringAt(a, "state"),
                    stringAt(a, "createdAt"), stringAt(a, "expiresAt"),
                    stringAt(a, "releaseReason")});
    }
  }
  session.out() << (table.rowCount() == 0 ? std::string("no allocations\n") : table.render());
  return kExitOk;
}

}  // namespace

void addMemoryCommands(CLI::App& app, CommandAction& action) {
  CLI::App* mem = app.add_subcommand("mem", "device memory: allocate, free, status, list");
  mem->require_subcommand(1);

  auto alloc = std::make_shared<AllocOptions>();
  CLI::App* allocCommand = mem->add_subcommand("alloc", "allocate memory on a device");
  allocCommand->add_option("device", alloc->deviceId, "device id")->required();
  allocCommand->add_option("size", alloc->size, "bytes, or a size like 512MiB")->required();
  allocCommand->add_option("--label", alloc->label, "free text shown in listings");
  allocCommand->add_option("--ttl", alloc->ttlSeconds, "lease in seconds (freed after)");
  allocCommand->add_flag("--pinned", alloc->pinned, "cpu only: lock the pages in RAM");
  allocCommand->add_flag("--verify", alloc->verify, "write and read back a test pattern");
  allocCommand->callback([&action, alloc] {
    action = [alloc](CliSession& session) { return allocate(session, *alloc); };
  });

  auto freeId = std::make_shared<std::string>();
  CLI::App* freeCommand = mem->add_subcommand("free", "free an allocation");
  freeCommand->add_option("allocation", *freeId, "allocation id")->required();
  freeCommand->callback([&action, freeId] {
    action = [freeId](CliSession& session) { return release(session, *freeId); };
  });

  auto statusDevice = std::make_shared<std::string>();
  CLI::App* statusCommand = mem->add_subcommand("status", "memory status of a device");
  statusCommand->add_option("device", *statusDevice, "device id")->required();
  statusCommand->callback([&action, statusDevice] {
    action = [statusDevice](CliSession& session) { return status(session, *statusDevice); };
  });

  auto listOptions = std::make_shared<ListOptions>();
  CLI::App* listCommand = mem->add_subcommand("list", "allocations, newest first");
  listCommand->add_option("--device", listOptions->deviceId, "only this device");
  listCommand->add_option("--label", listOptions->label, "only this label");
  listCommand->add_option("--kind", listOptions->kind, "raw, model or training")
      ->check(CLI::IsMember({"raw", "model", "training"}));
  listCommand->add_option("--state", listOptions->state, "held or released")
      ->check(CLI::IsMember({"held", "released"}));
  listCommand->callback([&action, listOptions] {
    action = [listOptions](CliSession& session) { return list(session, *listOptions); };
  });
}

}  // namespace deviceops::client
