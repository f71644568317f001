#include "trainer/distributed.h"

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#if defined(USE_C10D_NCCL) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define DEVICEOPS_HAVE_NCCL 1
#endif

namespace deviceops::trainer {

struct Communicator::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  std::string backend = "none";
};

Communicator::Communicator(int rank, int worldSize, std::unique_ptr<Group> group)
    : rank_(rank), worldSize_(worldSize), group_(std::move(group)) {}

Communicator::~Communicator() = default;

Result<std::unique_ptr<Communicator>> Communicator::connect(const std::string& rendezvous, int rank,
                                                            int worldSize,
                                                            const at::Device& device) {
  if (worldSize < 1 || rank < 0 || rank >= worldSize) {
    return makeError(
        ErrorCode::kInvalidArgument,
        "rank " + std::to_string(rank) + " is not in a world of " + std::to_string(worldSize));
  }
  auto group = std::make_unique<Group>();
  if (worldSize == 1) {
    return std::unique_ptr<Communicator>(new Communicator(rank, worldSize, std::move(group)));
  }
  if (rendezvous.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "--rendezvous is required when world size > 1");
  }
  try {
    group->store = c10::make_intrusive<c10d::FileStore>(rendezvous, worldSize);
#ifdef DEVICEOPS_HAVE_NCCL
    if (device.is_cuda()) {
      group->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(group->store, rank, worldSize);
      group->backend = "nccl";
    }
#endif
    if (!group->group) {
      auto options = c10d::ProcessGroupGloo::Options::create();
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      group->group =
          c10::make_intrusive<c10d::ProcessGroupGloo>(group->store, rank, worldSize, options);
      group->backend = "gloo";
    }
  } catch (const std::exception& e) {
    std::string what = e.what();
    return makeError(ErrorCode::kUnavailable, "cannot form the process group at " + rendezvous +
                                                  ": " + what.substr(0, what.find('\n')));
  }
  (void)device;
  return std::unique_ptr<Communicator>(new Communicator(rank, worldSize, std::move(group)));
}

void Communicator::allReduceSum(at::Tensor& tensor) {
  if (worldSize_ == 1) return;
  std::vector<at::Tensor> tensors{tensor};
  group_->group->allreduce(tensors)->wait();
}

void Communicator::broadcastFromRoot(at::Tensor& tensor) {
  if (worldSize_ == 1) return;
  std::vector<at::Tensor> tensors{tensor};
  group_->group->broadcast(tensors)->wait();
}

std::string Communicator::backend() const { return group_->backend; }

}  // namespace deviceops::trainer
