// `deviceops suites ...` and `deviceops generate ...` against a real daemon (filled in by the CLI
// work of issue 13).
