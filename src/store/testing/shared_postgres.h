// One PostgreSQL 15 server per test process (tests only), started on first use and stopped at
// exit; a test that cannot have it fails with the reason rather than skipping.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "store/testing/postgres_server.h"

namespace deviceops::testing {

inline PostgresServer* sharedPostgres() {
  static std::unique_ptr<PostgresServer> server;
  static Status started = [] {
    server = std::make_unique<PostgresServer>();
    return server->start();
  }();
  if (!started.ok()) {
    ADD_FAILURE() << "PostgreSQL 15 could not start: " << started.error().message;
    return nullptr;
  }
  return server.get();
}

}  // namespace deviceops::testing
