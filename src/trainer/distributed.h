// Collective communication between the ranks of one training job: c10d Gloo (NCCL for CUDA
// tensors when libtorch was built with it) over a FileStore at the --rendezvous path.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "common/result.h"

namespace deviceops::trainer {

// With worldSize 1 every operation is a no-op and nothing is connected.
// Thread-compatibility: one thread at a time; every rank must call the same operations in the
// same order. Operations throw c10::Error when a peer fails (the caller's edge converts it).
class Communicator {
 public:
  // Connects rank `rank` of `worldSize` through the FileStore at `rendezvous` (blocks until all
  // ranks joined). kInvalidArgument for a bad rank / world size / missing rendezvous path,
  // kUnavailable when the group cannot be formed.
  static Result<std::unique_ptr<Communicator>> connect(const std::string& rendezvous, int rank,
                                                       int worldSize, const at::Device& device);
  ~Communicator();

  int rank() const { return rank_; }
  int worldSize() const { return worldSize_; }
  // In place: `tensor` becomes the element-wise sum over all ranks. Blocks until done.
  void allReduceSum(at::Tensor& tensor);
  // In place: `tensor` becomes rank 0's. Blocks until done.
  void broadcastFromRoot(at::Tensor& tensor);
  // Which backend carries the collectives ("none", "gloo", "nccl").
  std::string backend() const;

 private:
  struct Group;
  Communicator(int rank, int worldSize, std::unique_ptr<Group> group);

  int rank_;
  int worldSize_;
  std::unique_ptr<Group> group_;
};

}  // namespace deviceops::trainer
