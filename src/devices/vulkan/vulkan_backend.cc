// The Vulkan backend: one VkInstance created in open() and kept for polls. Static facts (names,
// driver, UUIDs, queues, limits) are read once in open(); poll() re-reads only memory heaps and
// VK_EXT_memory_budget figures.
#include "devices/vulkan/vulkan_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <utility>

#include "devices/vulkan/vulkan_format.h"
#include "devices/vulkan/vulkan_instance.h"

namespace deviceops::devices {
namespace {

using vulkan::VulkanInstance;

// What open() learned about one physical device.
struct PhysicalDevice {
  VkPhysicalDevice handle = VK_NULL_HANDLE;
  bool hasMemoryBudget = false;  // VK_EXT_memory_budget supported and properties2 usable
  DeviceRecord record;           // static facts; memory fields are refreshed by every poll
};

bool contains(const std::vector<std::string>& names, const char* name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

nlohmann::json queueFlagNames(VkQueueFlags flags) {
  nlohmann::json names = nlohmann::json::array();
  if (flags & VK_QUEUE_GRAPHICS_BIT) names.push_back("graphics");
  if (flags & VK_QUEUE_COMPUTE_BIT) names.push_back("compute");
  if (flags & VK_QUEUE_TRANSFER_BIT) names.push_back("transfer");
  if (flags & VK_QUEUE_SPARSE_BINDING_BIT) names.push_back("sparseBinding");
  if (flags & VK_QUEUE_PROTECTED_BIT) names.push_back("protected");
  return names;
}

nlohmann::json heapFlagNames(VkMemoryHeapFlags flags) {
  nlohmann::json names = nlohmann::json::array();
  if (flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) names.push_back("deviceLocal");
  if (flags & VK_MEMORY_HEAP_MULTI_INSTANCE_BIT) names.push_back("multiInstance");
  return names;
}

// Queue families into properties: the list, and how many families / queues can run compute.
void describeQueues(const VulkanInstance& instance, VkPhysicalDevice handle,
                    nlohmann::json& properties) {
  std::uint32_t count = 0;
  instance.functions().getPhysicalDeviceQueueFamilyProperties(handle, &count, nullptr);
  std::vector<VkQueueFamilyProperties> families(count);
  instance.functions().getPhysicalDeviceQueueFamilyProperties(handle, &count, families.data());
  families.resize(count);
  nlohmann::json list = nlohmann::json::array();
  int computeFamilies = 0;
  std::uint64_t computeQueues = 0;
  for (std::uint32_t i = 0; i < families.size(); ++i) {
    const VkQueueFamilyProperties& family = families[i];
    list.push_back({{"index", i},
                    {"queueCount", family.queueCount},
                    {"flags", queueFlagNames(family.queueFlags)}});
    if (family.queueFlags & VK_QUEUE_COMPUTE_BIT) {
      ++computeFamilies;
      computeQueues += family.queueCount;
    }
  }
  properties["queueFamilies"] = std::move(list);
  properties["computeQueueFamilyCount"] = computeFamilies;
  properties["computeQueueCount"] = computeQueues;
}

// Limits worth showing, under their Vulkan names (sizes in bytes, as Vulkan defines them).
nlohmann::json describeLimits(const VkPhysicalDeviceLimits& limits) {
  const auto& count = limits.maxComputeWorkGroupCount;
  const auto& size = limits.maxComputeWorkGroupSize;
  return {{"maxComputeWorkGroupInvocations", limits.maxComputeWorkGroupInvocations},
          {"maxComputeSharedMemorySize", limits.maxComputeSharedMemorySize},
          {"maxComputeWorkGroupCount", {count[0], count[1], count[2]}},
          {"maxComputeWorkGroupSize", {size[0], size[1], size[2]}},
          {"maxMemoryAllocationCount", limits.maxMemoryAllocationCount},
          {"maxStorageBufferRange", limits.maxStorageBufferRange}};
}

// Everything about `handle` that does not change while the instance lives.
PhysicalDevice describeDevice(const VulkanInstance& instance, VkPhysicalDevice handle,
                              std::uint32_t index) {
  const vulkan::VulkanFunctions& fns = instance.functions();
  VkPhysicalDeviceProperties basic{};
  fns.getPhysicalDeviceProperties(handle, &basic);
  const std::vector<std::string> extensions = instance.deviceExtensions(handle);
  const std::uint32_t usableVersion = std::min(instance.apiVersion(), basic.apiVersion);
  const bool hasProperties2 = fns.getPhysicalDeviceProperties2 != nullptr;

  // Optional structures chained into vkGetPhysicalDeviceProperties2 only where the device (or
  // core version) defines them.
  VkPhysicalDeviceProperties2 properties2{};
  properties2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
  void** tail = &properties2.pNext;
  auto chain = [&tail](auto& structure) {
    *tail = &structure;
    tail = &structure.pNext;
  };
  VkPhysicalDeviceIDProperties id{};
  id.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES;
  VkPhysicalDeviceSubgroupProperties subgroup{};
  subgroup.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES;
  VkPhysicalDeviceDriverProperties driver{};
  driver.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES;
  VkPhysicalDevicePCIBusInfoPropertiesEXT pci{};
  pci.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PCI_BUS_INFO_PROPERTIES_EXT;
  const bool hasId = hasProperties2 && usableVersion >= VK_API_VERSION_1_1;
  const bool hasDriver = hasProperties2 && (usableVersion >= VK_API_VERSION_1_2 ||
                                            contains(extensions, "VK_KHR_driver_properties"));
  const bool hasPci = hasProperties2 && contains(extensions, "VK_EXT_pci_bus_info");
  if (hasId) chain(id);
  if (hasId) chain(subgroup);
  if (hasDriver) chain(driver);
  if (hasPci) chain(pci);
  if (hasProperties2) fns.getPhysicalDeviceProperties2(handle, &properties2);

  PhysicalDevice device;
  device.handle = handle;
  device.hasMemoryBudget = fns.getPhysicalDeviceMemoryProperties2 != nullptr &&
                           contains(extensions, "VK_EXT_memory_budget");
  DeviceRecord& record = device.record;
  record.backend = "vulkan";
  record.type = DeviceType::kGpu;
  record.name = basic.deviceName;
  record.vendor = vulkan::vendorName(basic.vendorID);
  nlohmann::json& properties = record.properties;
  properties["deviceIndex"] = index;
  properties["vulkanDeviceType"] = vulkan::physicalDeviceTypeName(basic.deviceType);
  properties["vendorId"] = fmt::format("0x{:04x}", basic.vendorID);
  properties["deviceId"] = fmt::format("0x{:04x}", basic.deviceID);
  properties["apiVersion"] = vulkan::apiVersionString(basic.apiVersion);
  properties["driverVersion"] = vulkan::driverVersionString(basic.vendorID, basic.driverVersion);
  if (hasId) {
    record.uuid = vulkan::uuidString(id.deviceUUID);
    const std::string driverUuid = vulkan::uuidString(id.driverUUID);
    if (!driverUuid.empty()) properties["driverUuid"] = driverUuid;
    properties["subgroupSize"] = subgroup.subgroupSize;
  }
  if (hasDriver) {
    properties["driverName"] = driver.driverName;
    properties["driverInfo"] = driver.driverInfo;
    const VkConformanceVersion& conformance = driver.conformanceVersion;
    properties["conformanceVersion"] =
        fmt::format("{}.{}.{}.{}", conformance.major, conformance.minor, conformance.subminor,
                    conformance.patch);
  }
  if (hasPci) {
    record.pciBusId =
        vulkan::pciBusIdString(pci.pciDomain, pci.pciBus, pci.pciDevice, pci.pciFunction);
  }
  properties["limits"] = describeLimits(basic.limits);
  describeQueues(instance, handle, properties);
  properties["memoryBudgetSupported"] = device.hasMemoryBudget;
  return device;
}

class VulkanBackend final : public Backend {
 public:
  explicit VulkanBackend(VulkanBackendOptions options) : options_(std::move(options)) {}

  std::string_view name() const override { return "vulkan"; }

  Status open() override {
    devices_.clear();
    instance_.reset();
    auto instance = VulkanInstance::create(options_.libraryPath);
    if (!instance.ok()) return instance.error();
    auto handles = (*instance)->physicalDevices();
    if (!handles.ok()) return handles.error();
    if (handles->empty()) {
      return makeError(ErrorCode::kUnavailable,
                       "no Vulkan physical devices: vkEnumeratePhysicalDevices returned 0 (no "
                       "installable client driver found a device)");
    }
    std::set<std::string> usedKeys;
    for (std::uint32_t i = 0; i < handles->size(); ++i) {
      PhysicalDevice device = describeDevice(**instance, (*handles)[i], i);
      // The device UUID identifies the device across restarts; two devices claiming the same
      // one (or none) fall back to their enumeration index.
      std::string key = device.record.uuid;
      if (key.empty() || usedKeys.count(key) != 0) key = "index:" + std::to_string(i);
      usedKeys.insert(key);
      device.record.localKey = std::move(key);
      devices_.push_back(std::move(device));
    }
    instance_ = std::move(instance).value();
    return Status::success();
  }

  Result<std::vector<DeviceRecord>> poll() override {
    if (instance_ == nullptr) {
      return makeError(ErrorCode::kUnavailable, "the vulkan backend is not open");
    }
    std::vector<DeviceRecord> records;
    records.reserve(devices_.size());
    for (const PhysicalDevice& device : devices_) {
      DeviceRecord record = device.record;
      readMemory(device, record);
      records.push_back(std::move(record));
    }
    return records;
  }

 private:
  // Heaps into properties.memoryHeaps; memory.totalBytes = sum of DEVICE_LOCAL heaps. With
  // VK_EXT_memory_budget also per-heap budget/usage, and used/free summed over device-local
  // heaps. Note the extension's scope: heapUsage is this process's use and heapBudget what this
  // process may use, so free = budget - usage is "what we could still allocate", not the
  // device-wide figure NVML reports.
  void readMemory(const PhysicalDevice& device, DeviceRecord& record) const {
    const vulkan::VulkanFunctions& fns = instance_->functions();
    VkPhysicalDeviceMemoryProperties memory{};
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget{};
    budget.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT;
    if (device.hasMemoryBudget) {
      VkPhysicalDeviceMemoryProperties2 memory2{};
      memory2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2;
      memory2.pNext = &budget;
      fns.getPhysicalDeviceMemoryProperties2(device.handle, &memory2);
      memory = memory2.memoryProperties;
    } else {
      fns.getPhysicalDeviceMemoryProperties(device.handle, &memory);
    }
    std::uint64_t totalBytes = 0;
    std::uint64_t usedBytes = 0;
    std::uint64_t freeBytes = 0;
    nlohmann::json heaps = nlohmann::json::array();
    const std::uint32_t heapCount =
        std::min<std::uint32_t>(memory.memoryHeapCount, VK_MAX_MEMORY_HEAPS);
    for (std::uint32_t i = 0; i < heapCount; ++i) {
      const VkMemoryHeap& heap = memory.memoryHeaps[i];
      const bool deviceLocal = (heap.flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
      nlohmann::json entry = {
          {"index", i}, {"sizeBytes", heap.size}, {"flags", heapFlagNames(heap.flags)}};
      if (device.hasMemoryBudget) {
        const std::uint64_t heapBudget = budget.heapBudget[i];
        const std::uint64_t heapUsage = budget.heapUsage[i];
        entry["budgetBytes"] = heapBudget;
        entry["usageBytes"] = heapUsage;
        if (deviceLocal) {
          usedBytes += heapUsage;
          freeBytes += heapBudget > heapUsage ? heapBudget - heapUsage : 0;
        }
      }
      if (deviceLocal) totalBytes += heap.size;
      heaps.push_back(std::move(entry));
    }
    record.properties["memoryHeaps"] = std::move(heaps);
    // memory.peakBandwidthBytesPerSecond stays unset: Vulkan exposes no bus width or memory
    // clock.
    record.memory.totalBytes = totalBytes;
    if (device.hasMemoryBudget) {
      record.memory.usedBytes = usedBytes;
      record.memory.freeBytes = freeBytes;
    }
  }

  const VulkanBackendOptions options_;
  std::unique_ptr<VulkanInstance> instance_;  // null until open() succeeds
  std::vector<PhysicalDevice> devices_;       // handles belong to instance_: destroyed first
};

}  // namespace

std::unique_ptr<Backend> makeVulkanBackend(VulkanBackendOptions options) {
  return std::make_unique<VulkanBackend>(std::move(options));
}

}  // namespace deviceops::devices
