// deviceops: the command-line client of deviceopsd. All logic lives in src/client/cli.cc.
#include <iostream>

#include "client/cli.h"

int main(int argc, char** argv) {
  return deviceops::client::runCli(argc, argv, std::cout, std::cerr, DEVICEOPS_VERSION);
}
