#include "devices/vulkan/vulkan_device.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <tuple>
#include <type_traits>
#include <vector>

#include "devices/vulkan/vulkan_format.h"

namespace deviceops::devices {
namespace {

constexpr VkMemoryPropertyFlags kPlainFlags =
    VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
    VK_MEMORY_PROPERTY_HOST_COHERENT_BIT | VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
constexpr VkMemoryPropertyFlags kMappable =
    VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
constexpr const char* kBudgetExtension = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;

Error unavailable(std::string message) {
  return makeError(ErrorCode::kUnavailable, std::move(message));
}

// What create() learns about one physical device before deciding it is the one.
struct PhysicalFacts {
  std::string uuid;  // "" when the device cannot report one (Vulkan 1.0 only)
  VkPhysicalDeviceType type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
  std::optional<std::uint64_t> maxAllocationBytes;
};

PhysicalFacts describe(const vulkan::VulkanInstance& instance, VkPhysicalDevice handle) {
  const vulkan::VulkanFunctions& fns = instance.functions();
  VkPhysicalDeviceProperties basic{};
  fns.getPhysicalDeviceProperties(handle, &basic);
  PhysicalFacts facts;
  facts.type = basic.deviceType;
  const std::uint32_t usable = std::min(instance.apiVersion(), basic.apiVersion);
  if (fns.getPhysicalDeviceProperties2 == nullptr || usable < VK_API_VERSION_1_1) return facts;
  VkPhysicalDeviceIDProperties id{};
  id.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES;
  VkPhysicalDeviceMaintenance3Properties maintenance3{};
  maintenance3.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES;
  id.pNext = &maintenance3;
  VkPhysicalDeviceProperties2 properties2{};
  properties2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
  properties2.pNext = &id;
  fns.getPhysicalDeviceProperties2(handle, &properties2);
  facts.uuid = vulkan::uuidString(id.deviceUUID);
  if (maintenance3.maxMemoryAllocationSize > 0) {
    facts.maxAllocationBytes = maintenance3.maxMemoryAllocationSize;
  }
  return facts;
}

// The first queue family that can do transfers (graphics and compute imply transfer).
std::optional<std::uint32_t> transferQueueFamily(const vulkan::VulkanInstance& instance,
                                                 VkPhysicalDevice handle) {
  std::uint32_t count = 0;
  instance.functions().getPhysicalDeviceQueueFamilyProperties(handle, &count, nullptr);
  std::vector<VkQueueFamilyProperties> families(count);
  instance.functions().getPhysicalDeviceQueueFamilyProperties(handle, &count, families.data());
  constexpr VkQueueFlags kCanTransfer =
      VK_QUEUE_TRANSFER_BIT | VK_QUEUE_COMPUTE_BIT | VK_QUEUE_GRAPHICS_BIT;
  for (std::uint32_t i = 0; i < count; ++i) {
    if ((families[i].queueFlags & kCanTransfer) != 0 && families[i].queueCount > 0) return i;
  }
  return std::nullopt;
}

}  // namespace

std::string vulkanResultName(VkResult result) { return vulkan::resultName(result); }

std::optional<VulkanMemoryChoice> chooseMemoryType(const VkPhysicalDeviceMemoryProperties& memory,
                                                   std::uint32_t bufferTypeBits, bool discrete) {
  std::optional<VulkanMemoryChoice> best;
  // Larger tuples win: (buffer-compatible, preferred visibility, heap size, -index).
  auto rank = [&](const VulkanMemoryChoice& choice) {
    const bool mappable = (choice.flags & kMappable) == kMappable;
    const bool hostVisible = (choice.flags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) != 0;
    const bool preferred = discrete ? !hostVisible : mappable;
    return std::make_tuple(choice.bufferCompatible, preferred, choice.heapBytes,
                           -static_cast<std::int64_t>(choice.typeIndex));
  };
  for (std::uint32_t i = 0; i < memory.memoryTypeCount && i < VK_MAX_MEMORY_TYPES; ++i) {
    const VkMemoryType& type = memory.memoryTypes[i];
    if (type.heapIndex >= memory.memoryHeapCount) continue;
    const VkMemoryHeap& heap = memory.memoryHeaps[type.heapIndex];
    if ((heap.flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) == 0) continue;
    if ((type.propertyFlags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) == 0) continue;
    if ((type.propertyFlags & ~kPlainFlags) != 0) continue;  // protected, lazily allocated, ...
    VulkanMemoryChoice choice;
    choice.typeIndex = i;
    choice.flags = type.propertyFlags;
    choice.heapIndex = type.heapIndex;
    choice.heapBytes = heap.size;
    choice.bufferCompatible = (bufferTypeBits & (1u << i)) != 0;
    if (!best || rank(choice) > rank(*best)) best = choice;
  }
  return best;
}

Result<std::unique_ptr<VulkanDevice>> VulkanDevice::create(const std::string& uuid,
                                                           const std::string& libraryPath) {
  auto instance = vulkan::VulkanInstance::create(libraryPath);
  if (!instance.ok()) return instance.error();
  auto handles = (*instance)->physicalDevices();
  if (!handles.ok()) return handles.error();
  auto self = std::unique_ptr<VulkanDevice>(new VulkanDevice());
  self->instance_ = std::move(instance).value();
  const vulkan::VulkanInstance& vk = *self->instance_;

  PhysicalFacts facts;
  std::vector<std::string> seen;
  for (VkPhysicalDevice handle : *handles) {
    PhysicalFacts candidate = describe(vk, handle);
    if (candidate.uuid == uuid && !uuid.empty()) {
      self->physical_ = handle;
      facts = std::move(candidate);
      break;
    }
    seen.push_back(candidate.uuid.empty() ? "(no UUID)" : candidate.uuid);
  }
  if (self->physical_ == VK_NULL_HANDLE) {
    return makeError(ErrorCode::kNotFound,
                     fmt::format("no Vulkan device with UUID {}; the loader reports [{}]", uuid,
                                 fmt::join(seen, ", ")));
  }
  self->maxAllocationBytes_ = facts.maxAllocationBytes;
  vk.functions().getPhysicalDeviceMemoryProperties(self->physical_, &self->memoryProperties_);
  const std::vector<std::string> extensions = vk.deviceExtensions(self->physical_);
  self->hasBudget_ =
      vk.functions().getPhysicalDeviceMemoryProperties2 != nullptr &&
      std::find(extensions.begin(), extensions.end(), kBudgetExtension) != extensions.end();
  if (Status created = self->createLogicalDevice(libraryPath, self->hasBudget_); !created.ok()) {
    return created.error();
  }

  // A probe buffer tells which memory types can back transfer buffers.
  const VulkanDeviceFunctions& fns = self->functions_;
  std::uint32_t bufferTypeBits = ~0u;
  VkBufferCreateInfo probeInfo{};
  probeInfo.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
  probeInfo.size = 1 << 20;
  probeInfo.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  probeInfo.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  VkBuffer probe = VK_NULL_HANDLE;
  if (fns.createBuffer(self->device_, &probeInfo, nullptr, &probe) == VK_SUCCESS) {
    VkMemoryRequirements requirements{};
    fns.getBufferMemoryRequirements(self->device_, probe, &requirements);
    bufferTypeBits = requirements.memoryTypeBits;
    fns.destroyBuffer(self->device_, probe, nullptr);
  }
  auto choice = chooseMemoryType(self->memoryProperties_, bufferTypeBits,
                                 facts.type == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU);
  if (!choice) {
    return unavailable(fmt::format("Vulkan device {} has no DEVICE_LOCAL memory type", uuid));
  }
  self->memory_ = *choice;
  return self;
}

Status VulkanDevice::createLogicalDevice(const std::string& libraryPath, bool enableBudget) {
  const vulkan::VulkanInstance& vk = *instance_;
  const std::optional<std::uint32_t> family = transferQueueFamily(vk, physical_);
  if (!family) return unavailable("the Vulkan device has no queue family that can transfer");
  queueFamily_ = *family;

  // The loader exports every core entry point; its vkCreateDevice and vkGetDeviceProcAddr
  // trampolines accept physical devices of any instance it created.
  auto loader = SharedLibrary::open(libraryPath);
  if (!loader.ok()) return loader.error();
  loader_ = std::move(loader).value();
  auto createDevice = loader_->function<PFN_vkCreateDevice>("vkCreateDevice");
  auto getDeviceProcAddr = loader_->function<PFN_vkGetDeviceProcAddr>("vkGetDeviceProcAddr");
  if (createDevice == nullptr || getDeviceProcAddr == nullptr) {
    return unavailable(libraryPath + " does not export vkCreateDevice/vkGetDeviceProcAddr");
  }

  const float priority = 1.0f;
  VkDeviceQueueCreateInfo queueInfo{};
  queueInfo.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO;
  queueInfo.queueFamilyIndex = queueFamily_;
  queueInfo.queueCount = 1;
  queueInfo.pQueuePriorities = &priority;
  const char* budgetExtension = kBudgetExtension;
  VkDeviceCreateInfo deviceInfo{};
  deviceInfo.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO;
  deviceInfo.queueCreateInfoCount = 1;
  deviceInfo.pQueueCreateInfos = &queueInfo;
  deviceInfo.enabledExtensionCount = enableBudget ? 1 : 0;
  deviceInfo.ppEnabledExtensionNames = enableBudget ? &budgetExtension : nullptr;
  const VkResult created = createDevice(physical_, &deviceInfo, nullptr, &device_);
  if (created != VK_SUCCESS) {
    device_ = VK_NULL_HANDLE;
    return unavailable("vkCreateDevice failed: " + vulkan::resultName(created));
  }

  VulkanDeviceFunctions& fns = functions_;
  bool complete = true;
  auto resolve = [&](auto& slot, const char* name) {
    slot =
        reinterpret_cast<std::remove_reference_t<decltype(slot)>>(getDeviceProcAddr(device_, name));
    complete = complete && slot != nullptr;
  };
  resolve(fns.destroyDevice, "vkDestroyDevice");
  resolve(fns.getDeviceQueue, "vkGetDeviceQueue");
  resolve(fns.allocateMemory, "vkAllocateMemory");
  resolve(fns.freeMemory, "vkFreeMemory");
  resolve(fns.mapMemory, "vkMapMemory");
  resolve(fns.unmapMemory, "vkUnmapMemory");
  resolve(fns.createBuffer, "vkCreateBuffer");
  resolve(fns.destroyBuffer, "vkDestroyBuffer");
  resolve(fns.getBufferMemoryRequirements, "vkGetBufferMemoryRequirements");
  resolve(fns.bindBufferMemory, "vkBindBufferMemory");
  resolve(fns.createCommandPool, "vkCreateCommandPool");
  resolve(fns.destroyCommandPool, "vkDestroyCommandPool");
  resolve(fns.allocateCommandBuffers, "vkAllocateCommandBuffers");
  resolve(fns.beginCommandBuffer, "vkBeginCommandBuffer");
  resolve(fns.endCommandBuffer, "vkEndCommandBuffer");
  resolve(fns.cmdCopyBuffer, "vkCmdCopyBuffer");
  resolve(fns.queueSubmit, "vkQueueSubmit");
  resolve(fns.createFence, "vkCreateFence");
  resolve(fns.destroyFence, "vkDestroyFence");
  resolve(fns.waitForFences, "vkWaitForFences");
  resolve(fns.resetFences, "vkResetFences");
  if (!complete) {
    // Without vkDestroyDevice the device cannot be destroyed: leak it rather than crash.
    if (fns.destroyDevice == nullptr) device_ = VK_NULL_HANDLE;
    return unavailable("the Vulkan driver lacks core 1.0 device functions");
  }
  fns.getDeviceQueue(device_, queueFamily_, 0, &queue_);
  return Status::success();
}

VulkanDevice::~VulkanDevice() {
  if (device_ != VK_NULL_HANDLE) functions_.destroyDevice(device_, nullptr);
}

std::optional<std::uint64_t> VulkanDevice::budgetFreeBytes() const {
  if (!hasBudget_) return std::nullopt;
  VkPhysicalDeviceMemoryBudgetPropertiesEXT budget{};
  budget.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT;
  VkPhysicalDeviceMemoryProperties2 memory2{};
  memory2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2;
  memory2.pNext = &budget;
  instance_->functions().getPhysicalDeviceMemoryProperties2(physical_, &memory2);
  const std::uint64_t limit = budget.heapBudget[memory_.heapIndex];
  const std::uint64_t usage = budget.heapUsage[memory_.heapIndex];
  return limit > usage ? limit - usage : 0;
}

}  // namespace deviceops::devices
