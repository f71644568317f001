#include "devices/vulkan/vulkan_instance.h"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "devices/vulkan/vulkan_format.h"

namespace deviceops::devices::vulkan {
namespace {

constexpr const char* kProperties2Extension =
    VK_KHR_GET_PHYSICAL_DEVICE_PROPERTIES_2_EXTENSION_NAME;
constexpr const char* kPortabilityExtension = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;

Error unavailable(std::string message) {
  return makeError(ErrorCode::kUnavailable, std::move(message));
}

std::vector<std::string> instanceExtensions(PFN_vkEnumerateInstanceExtensionProperties enumerate) {
  std::vector<std::string> names;
  if (enumerate == nullptr) return names;
  std::uint32_t count = 0;
  if (enumerate(nullptr, &count, nullptr) != VK_SUCCESS) return names;
  std::vector<VkExtensionProperties> extensions(count);
  if (enumerate(nullptr, &count, extensions.data()) < 0) return names;
  extensions.resize(count);
  for (const auto& extension : extensions) names.emplace_back(extension.extensionName);
  return names;
}

std::set<std::string> loadedObjects() {
  std::set<std::string> names;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') {
          static_cast<std::set<std::string>*>(data)->insert(info->dlpi_name);
        }
        return 0;
      },
      &names);
  return names;
}

// Keeps the driver libraries that the loader opened for this instance mapped until the process
// exits (RTLD_NODELETE), even after the last vkDestroyInstance. Loading Mesa's drivers and
// libLLVM costs tens of milliseconds each time (the memory allocators open instances of their
// own), and a driver's one-time allocations stay reachable at exit, so LeakSanitizer does not
// report them from an unmapped "<unknown module>" (lavapipe's 128-byte pthread_once buffer).
void keepLoaded(const std::set<std::string>& before) {
  for (const std::string& name : loadedObjects()) {
    if (before.count(name) == 0) dlopen(name.c_str(), RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  }
}

bool contains(const std::vector<std::string>& names, const char* name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

Result<std::unique_ptr<VulkanInstance>> VulkanInstance::create(const std::string& libraryPath) {
  const std::set<std::string> loadedBefore = loadedObjects();
  auto library = SharedLibrary::open(libraryPath);
  if (!library.ok()) return library.error();
  auto getInstanceProcAddr =
      (*library)->function<PFN_vkGetInstanceProcAddr>("vkGetInstanceProcAddr");
  if (getInstanceProcAddr == nullptr) {
    return unavailable(libraryPath + " is not a Vulkan loader: it lacks vkGetInstanceProcAddr");
  }
  auto global = [&](const char* name) { return getInstanceProcAddr(VK_NULL_HANDLE, name); };
  auto enumerateVersion =
      reinterpret_cast<PFN_vkEnumerateInstanceVersion>(global("vkEnumerateInstanceVersion"));
  auto enumerateExtensions = reinterpret_cast<PFN_vkEnumerateInstanceExtensionProperties>(
      global("vkEnumerateInstanceExtensionProperties"));
  auto createInstance = reinterpret_cast<PFN_vkCreateInstance>(global("vkCreateInstance"));
  if (createInstance == nullptr) {
    return unavailable(libraryPath + " does not provide vkCreateInstance");
  }

  std::uint32_t loaderVersion = VK_API_VERSION_1_0;
  if (enumerateVersion != nullptr && enumerateVersion(&loaderVersion) != VK_SUCCESS) {
    loaderVersion = VK_API_VERSION_1_0;
  }
  const bool loaderIs11 = loaderVersion >= VK_API_VERSION_1_1;
  const std::vector<std::string> available = instanceExtensions(enumerateExtensions);
  std::vector<const char*> enabled;
  VkInstanceCreateFlags flags = 0;
  if (!loaderIs11) {
    // A 1.0 loader: vkGetPhysicalDeviceProperties2 and friends exist only as this extension.
    if (contains(available, kProperties2Extension)) enabled.push_back(kProperties2Extension);
  }
  if (contains(available, kPortabilityExtension)) {
    enabled.push_back(kPortabilityExtension);
    flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
  }

  auto self = std::unique_ptr<VulkanInstance>(new VulkanInstance());
  self->library_ = std::move(library).value();
  self->apiVersion_ = loaderIs11 ? VK_API_VERSION_1_3 : VK_API_VERSION_1_0;

  VkApplicationInfo application{};
  application.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO;
  application.pApplicationName = "deviceops";
  application.pEngineName = "deviceops";
  application.apiVersion = self->apiVersion_;
  VkInstanceCreateInfo createInfo{};
  createInfo.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO;
  createInfo.flags = flags;
  createInfo.pApplicationInfo = &application;
  createInfo.enabledExtensionCount = static_cast<std::uint32_t>(enabled.size());
  createInfo.ppEnabledExtensionNames = enabled.data();
  const VkResult created = createInstance(&createInfo, nullptr, &self->instance_);
  if (created != VK_SUCCESS) {
    self->instance_ = VK_NULL_HANDLE;
    return unavailable("vkCreateInstance failed: " + resultName(created));
  }

  auto instanceFunction = [&](const char* name) {
    return getInstanceProcAddr(self->instance_, name);
  };
  VulkanFunctions& fns = self->functions_;
  fns.destroyInstance =
      reinterpret_cast<PFN_vkDestroyInstance>(instanceFunction("vkDestroyInstance"));
  fns.enumeratePhysicalDevices = reinterpret_cast<PFN_vkEnumeratePhysicalDevices>(
      instanceFunction("vkEnumeratePhysicalDevices"));
  fns.enumerateDeviceExtensionProperties =
      reinterpret_cast<PFN_vkEnumerateDeviceExtensionProperties>(
          instanceFunction("vkEnumerateDeviceExtensionProperties"));
  fns.getPhysicalDeviceProperties = reinterpret_cast<PFN_vkGetPhysicalDeviceProperties>(
      instanceFunction("vkGetPhysicalDeviceProperties"));
  fns.getPhysicalDeviceMemoryProperties = reinterpret_cast<PFN_vkGetPhysicalDeviceMemoryProperties>(
      instanceFunction("vkGetPhysicalDeviceMemoryProperties"));
  fns.getPhysicalDeviceQueueFamilyProperties =
      reinterpret_cast<PFN_vkGetPhysicalDeviceQueueFamilyProperties>(
          instanceFunction("vkGetPhysicalDeviceQueueFamilyProperties"));
  const bool properties2Enabled = loaderIs11 || contains(available, kProperties2Extension);
  if (properties2Enabled) {
    const char* suffix = loaderIs11 ? "" : "KHR";
    fns.getPhysicalDeviceProperties2 = reinterpret_cast<PFN_vkGetPhysicalDeviceProperties2>(
        instanceFunction((std::string("vkGetPhysicalDeviceProperties2") + suffix).c_str()));
    fns.getPhysicalDeviceMemoryProperties2 =
        reinterpret_cast<PFN_vkGetPhysicalDeviceMemoryProperties2>(instanceFunction(
            (std::string("vkGetPhysicalDeviceMemoryProperties2") + suffix).c_str()));
  }
  if (fns.destroyInstance == nullptr || fns.enumeratePhysicalDevices == nullptr ||
      fns.enumerateDeviceExtensionProperties == nullptr ||
      fns.getPhysicalDeviceProperties == nullptr ||
      fns.getPhysicalDeviceMemoryProperties == nullptr ||
      fns.getPhysicalDeviceQueueFamilyProperties == nullptr) {
    // The instance cannot be destroyed through a missing vkDestroyInstance; leak it rather than
    // crash (a loader this broken is not expected outside of tests).
    if (fns.destroyInstance == nullptr) self->instance_ = VK_NULL_HANDLE;
    return unavailable(libraryPath + " lacks core Vulkan 1.0 instance functions");
  }
  keepLoaded(loadedBefore);  // the loader opened the drivers in vkCreateInstance
  return self;
}

VulkanInstance::~VulkanInstance() {
  if (instance_ != VK_NULL_HANDLE && functions_.destroyInstance != nullptr) {
    functions_.destroyInstance(instance_, nullptr);
  }
}

Result<std::vector<VkPhysicalDevice>> VulkanInstance::physicalDevices() const {
  std::vector<VkPhysicalDevice> devices;
  VkResult result = VK_INCOMPLETE;
  // VK_INCOMPLETE: a device appeared between the two calls; ask again.
  for (int attempt = 0; attempt < 3 && result == VK_INCOMPLETE; ++attempt) {
    std::uint32_t count = 0;
    result = functions_.enumeratePhysicalDevices(instance_, &count, nullptr);
    if (result != VK_SUCCESS) break;
    devices.resize(count);
    result = functions_.enumeratePhysicalDevices(instance_, &count, devices.data());
    devices.resize(count);
  }
  if (result == VK_ERROR_INITIALIZATION_FAILED) {
    // What the loader returns when every installed driver failed to find its hardware.
    return unavailable(
        "vkEnumeratePhysicalDevices failed: VK_ERROR_INITIALIZATION_FAILED (no installed Vulkan "
        "driver found a device)");
  }
  if (result < 0) {
    return unavailable("vkEnumeratePhysicalDevices failed: " + resultName(result));
  }
  return devices;
}

std::vector<std::string> VulkanInstance::deviceExtensions(VkPhysicalDevice device) const {
  std::vector<std::string> names;
  std::uint32_t count = 0;
  if (functions_.enumerateDeviceExtensionProperties(device, nullptr, &count, nullptr) !=
      VK_SUCCESS) {
    return names;
  }
  std::vector<VkExtensionProperties> extensions(count);
  if (functions_.enumerateDeviceExtensionProperties(device, nullptr, &count, extensions.data()) <
      0) {
    return names;
  }
  extensions.resize(count);
  for (const auto& extension : extensions) names.emplace_back(extension.extensionName);
  return names;
}

}  // namespace deviceops::devices::vulkan
