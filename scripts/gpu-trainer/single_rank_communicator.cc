// The trainer's Communicator (src/trainer/distributed.h) for a libtorch that ships no Gloo
// headers, as PyTorch's pip wheels do: one rank per job, and a world of more ranks is refused.
// scripts/gpu-trainer/CMakeLists.txt builds it instead of src/trainer/distributed.cc when
// <gloo/algorithm.h> is not among libtorch's headers; every other source is the checkout's.
#include <memory>
#include <string>
#include <utility>

#include "trainer/distributed.h"

namespace deviceops::trainer {

struct Communicator::Group {};

Communicator::Communicator(int rank, int worldSize, std::unique_ptr<Group> group)
    : rank_(rank), worldSize_(worldSize), group_(std::move(group)) {}

Communicator::~Communicator() = default;

Result<std::unique_ptr<Communicator>> Communicator::connect(const std::string& /*rendezvous*/,
                                                            int rank, int worldSize,
                                                            const at::Device& /*device*/) {
  if (worldSize < 1 || rank < 0 || rank >= worldSize) {
    return makeError(
        ErrorCode::kInvalidArgument,
        "rank " + std::to_string(rank) + " is not in a world of " + std::to_string(worldSize));
  }
  if (worldSize > 1) {
    return makeError(ErrorCode::kUnavailable,
                     "this trainer was built against a libtorch without Gloo's headers: one rank "
                     "per job");
  }
  return std::unique_ptr<Communicator>(
      new Communicator(rank, worldSize, std::make_unique<Group>()));
}

void Communicator::allReduceSum(at::Tensor& /*tensor*/) {}

void Communicator::broadcastFromRoot(at::Tensor& /*tensor*/) {}

std::string Communicator::backend() const { return "none"; }

}  // namespace deviceops::trainer
