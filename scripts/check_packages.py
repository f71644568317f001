#!/usr/bin/python3
"""The package guard: every system file the project uses must come from a package that
scripts/setup.sh installs by name, or from the dependency closure of those packages.

    scripts/check_packages.py [--packages FILE]... [--bench-packages FILE]... BUILD_DIR...

What is collected, from the source tree and each build directory:
  headers    every header the compiler read (`ninja -t deps`)
  libraries  what the built programs load: `ldd` of every ELF file in the build directories, and
             /proc/PID/maps of a running deviceopsd after device discovery (dlopen: Vulkan ICDs)
  python     every module the project's Python files import, as /usr/bin/python3 loads it
  programs   every program the tests and scripts call: absolute paths in C++ sources, the command
             words of shell scripts, the Makefile, .ci/run and CMake COMMAND lines
Each file is mapped to its Debian package (dpkg's file lists, as `dpkg -S`). A package passes
when it is named in the lists, is in their dependency closure without Recommends/Suggests
(resolved on the installed system, as apt-get --no-install-recommends would have pulled it in),
or belongs to the base system (Essential: yes or Priority: required, and their closure).
A file outside every package fails too, unless it belongs to the project (source tree, build
directories, NuGet/npm restores) or is a declared machine prerequisite (MACHINE_PREREQUISITES).

Exit status 0 when all passes, 1 with one line per offending file (file, package, who used it),
2 on a usage error.
"""

import argparse
import ast
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
# Programs are looked up on the system's PATH, not the caller's: a python3 or cmake that a user
# put first on PATH (pyenv, /opt) is not what a fresh machine has.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Files that no Debian package provides and that the machine must bring, with the reason.
MACHINE_PREREQUISITES = {
    "/usr/share/dotnet/": "the .NET SDK, only to restore ONNX Runtime from NuGet (DEVELOPERS.md)",
}

# Shell words that are not programs: builtins, keywords and our own wrappers.
SHELL_WORDS = {
    "if", "then", "else", "elif", "fi", "for", "in", "do", "done", "while", "until", "case",
    "esac", "function", "return", "exit", "local", "export", "readonly", "declare", "set",
    "unset", "shift", "cd", "echo", "printf", "read", "mapfile", "wait", "trap", "source", ".",
    "eval", "exec", "true", "false", ":", "[", "[[", "]]", "test", "command", "type", "jobs",
    "kill", "let", "break", "continue", "pushd", "popd", "umask", "ulimit", "time", "!", "{", "}",
    "env", "sudo", "as_root",
}


def fail_usage(message):
    print(f"check-packages: {message}", file=sys.stderr)
    sys.exit(2)


def read_list(path):
    names = []
    with open(path) as handle:
        for line in handle:
            names.extend(line.split("#", 1)[0].split())
    return names


# ---------------------------------------------------------------------------------------------
# dpkg: installed packages, their dependencies and their files


def parse_dpkg_status():
    """Installed packages: name -> {depends: [[alt, ...], ...], provides: [...], base: bool}."""
    packages, stanza = {}, {}

    def flush():
        if "Package" in stanza and "install ok installed" in stanza.get("Status", ""):
            groups = []
            for field in ("Pre-Depends", "Depends"):
                for group in filter(None, (g.strip() for g in stanza.get(field, "").split(","))):
                    groups.append([strip_version(a) for a in group.split("|")])
            packages[stanza["Package"]] = {
                "depends": groups,
                "provides": [strip_version(p) for p in stanza.get("Provides", "").split(",") if p.strip()],
                "base": stanza.get("Essential") == "yes" or stanza.get("Priority") == "required",
            }

    key = None
    with open("/var/lib/dpkg/status", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line == "\n":
                flush()
                stanza, key = {}, None
            elif line[0] in " \t" and key:
                stanza[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                stanza[key] = value.strip()
    flush()
    return packages


def strip_version(alternative):
    return re.sub(r"\(.*?\)", "", alternative).strip().split(":")[0]


def closure(roots, packages):
    """The installed packages that roots pull in through Depends/Pre-Depends (no Recommends)."""
    providers = {}
    for name, info in packages.items():
        for provided in info["provides"]:
            providers.setdefault(provided, []).append(name)

    def resolve(name):
        if name in packages:
            return [name]
        return providers.get(name, [])

    seen, todo = set(), [r for r in roots if r in packages]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for group in packages[name]["depends"]:
            candidates = [c for alternative in group for c in resolve(alternative)]
            if not candidates or any(c in seen for c in candidates):
                continue
            todo.append(candidates[0])  # apt takes the first alternative it can satisfy
    return seen


def file_owners():
    """Path -> package, from dpkg's file lists (what `dpkg -S` reads)."""
    owners = {}
    for listing in glob.glob("/var/lib/dpkg/info/*.list"):
        package = os.path.basename(listing)[: -len(".list")].split(":")[0]
        with open(listing, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                owners.setdefault(line.rstrip("\n"), package)
    return owners


def owner_of(path, owners):
    """The package that installed path (merged /usr and symlinks such as alternatives allowed)."""
    candidates = [path, os.path.normpath(path), os.path.realpath(path)]
    for candidate in list(candidates):
        if candidate.startswith("/usr/"):
            candidates.append(candidate[4:])
        elif candidate.startswith(("/lib", "/bin", "/sbin")):
            candidates.append("/usr" + candidate)
    for candidate in candidates:
        if candidate in owners:
            return owners[candidate]
    return None


# ---------------------------------------------------------------------------------------------
# What the project uses: (path, used by) pairs


def headers(build_dir):
    result = subprocess.run(["ninja", "-C", build_dir, "-t", "deps"], capture_output=True,
                            text=True, check=True)
    used, target = [], None
    for line in result.stdout.splitlines():
        if line and not line[0].isspace():
            target = line.split(":")[0]
        elif line.strip():
            path = line.strip()
            if not os.path.isabs(path):
                path = os.path.normpath(os.path.join(build_dir, path))
            used.append((path, f"{build_dir}: {target}"))
    return used


def elf_files(build_dir):
    skip = ("CMakeFiles", "nuget", "nuget-obj")
    for directory, subdirectories, files in os.walk(build_dir):
        subdirectories[:] = [s for s in subdirectories if s not in skip]
        for name in files:
            path = os.path.join(directory, name)
            if os.path.islink(path) or not os.access(path, os.X_OK):
                continue
            with open(path, "rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    yield path


def linked_libraries(build_dir):
    used = []
    for binary in elf_files(build_dir):
        result = subprocess.run(["ldd", binary], capture_output=True, text=True)
        for line in result.stdout.splitlines():
            line = line.strip()
            if "=> not found" in line:
                used.append((f"<missing> {line.split()[0]}", binary))
            elif "=>" in line:
                path = line.split("=>", 1)[1].split("(")[0].strip()
                if path:
                    used.append((path, binary))
            elif line.startswith("/"):
                used.append((line.split()[0], binary))
    return used


def daemon_mappings(build_dir):
    """Files mapped by a running deviceopsd once its backends are open (dlopen'ed ICDs too)."""
    daemon = os.path.join(build_dir, "src", "deviceopsd")
    if not os.access(daemon, os.X_OK):
        return []
    work = tempfile.mkdtemp(prefix="deviceops-check-packages-")
    ready = os.path.join(work, "ready")
    process = subprocess.Popen(
        [daemon, "--listen", "127.0.0.1:0", "--data-dir", os.path.join(work, "data"),
         "--ready-file", ready], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    used = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not os.path.exists(ready):
            if process.poll() is not None:
                break
            time.sleep(0.1)
        time.sleep(2)  # the first device poll opens every backend
        if process.poll() is None:
            with open(f"/proc/{process.pid}/maps") as maps:
                for line in maps:
                    fields = line.split(None, 5)
                    path = fields[5].strip() if len(fields) == 6 else ""
                    # Only loaded code and data of the system, not its own work files.
                    if path.startswith("/") and not path.startswith(work) and \
                            not path.startswith(("/dev/", "/memfd:")):
                        used.append((path, f"{daemon} (running)"))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(work, ignore_errors=True)
    return sorted(set(used))


def project_python_files():
    for folder in ("scripts", "tests", "src", "bench", "fuzz"):
        for directory, subdirectories, files in os.walk(os.path.join(ROOT, folder)):
            subdirectories[:] = [s for s in subdirectories if s != "node_modules"]
            for name in files:
                if name.endswith(".py"):
                    yield os.path.join(directory, name)


def python_modules():
    """Every file /usr/bin/python3 loads to import what the project's Python files import."""
    imports = {}
    paths = list(project_python_files())
    # The project's own modules (a script importing its neighbour) come from no package.
    own = {os.path.splitext(os.path.basename(path))[0] for path in paths}
    for path in paths:
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in own:
                    continue
                imports.setdefault(name.split(".")[0], os.path.relpath(path, ROOT))
    # Modules already loaded at start-up (site's .pth hooks of whatever happens to be installed)
    # are not what the project imports; only what its imports load is reported.
    probe = ("import importlib, sys\n"
             "before = set(sys.modules)\n"
             "for name in sys.argv[1:]:\n"
             "    try: importlib.import_module(name)\n"
             "    except ImportError: print('<missing python module> ' + name)\n"
             "for name, module in list(sys.modules.items()):\n"
             "    origin = getattr(module, '__file__', None) if name not in before else None\n"
             "    if origin: print(origin)\n")
    if not os.access(PYTHON, os.X_OK):
        return [(f"<missing> {PYTHON}", "the tests")]
    result = subprocess.run([PYTHON, "-c", probe, *sorted(imports)], capture_output=True,
                            text=True, cwd=tempfile.gettempdir())
    who = "python imports of " + ", ".join(sorted(set(imports.values())))
    used = [(PYTHON, who)]
    for line in result.stdout.splitlines():
        if line.startswith("<missing python module> "):
            name = line.split()[-1]
            used.append((f"<missing> python module {name}", imports[name]))
        else:
            used.append((line, who))
    return used


def shell_sources():
    """(path, text) of the files whose command words are programs: shell scripts, Makefile,
    .ci/run, and the COMMAND lines of CMake files."""
    paths = glob.glob(os.path.join(ROOT, "scripts", "*.sh")) + glob.glob(os.path.join(ROOT, "bench", "*.sh"))
    paths += [os.path.join(ROOT, ".ci", "run")]
    for path in paths:
        if os.path.exists(path):
            yield path, strip_heredocs(open(path).read())
    makefile = os.path.join(ROOT, "Makefile")
    # Recipe lines, without make's prefixes (@ silent, - ignore errors, + always run).
    recipe = "\n".join(line.strip().lstrip("@-+") for line in open(makefile)
                       if line.startswith("\t"))
    yield makefile, recipe.replace("$(BUILD)", "build").replace("$(CURDIR)", ROOT)
    for path in glob.glob(os.path.join(ROOT, "**", "CMakeLists.txt"), recursive=True) + \
            glob.glob(os.path.join(ROOT, "cmake", "*.cmake")):
        if "/build" in os.path.relpath(path, ROOT) or "node_modules" in path:
            continue
        commands = re.findall(r"COMMAND\s+(\S+)", open(path).read())
        yield path, "\n".join(c.strip('"') for c in commands)


def strip_heredocs(text):
    lines, out, end = text.splitlines(), [], None
    for line in lines:
        if end is not None:
            if line.strip() == end:
                end = None
            continue
        match = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if match:
            end = match.group(1)
        out.append(re.sub(r"#.*$", "", line) if not line.lstrip().startswith("#!") else "")
    return "\n".join(out)


def shell_functions(text):
    return set(re.findall(r"^\s*([A-Za-z_][\w-]*)\s*\(\)\s*\{", text, re.MULTILINE))


def command_words(text):
    """The first word of every simple command in text (a close reading, not a shell parser)."""
    words = []
    text = re.sub(r"\\\n", " ", text)
    for segment in re.split(r"\|\||&&|[|;\n(`]|\$\(|\bthen\b|\bdo\b|\belse\b", text):
        tokens = segment.split()
        while tokens and (re.match(r"^\w+=", tokens[0]) or tokens[0] in
                          {"if", "while", "until", "!", "time", "exec", "env", "sudo", "as_root",
                           "command", "nice", "timeout", "-n", "-v"} or
                          re.match(r"^-?\d+$", tokens[0])):
            if tokens[0] == "command" and len(tokens) > 1 and tokens[1] == "-v":
                tokens = tokens[2:]
                continue
            tokens = tokens[1:]
        if tokens:
            words.append(tokens[0].strip("\"'"))
    return words


def programs():
    used = []
    for path, text in shell_sources():
        functions = shell_functions(text)
        for word in command_words(text):
            if (word in SHELL_WORDS or word in functions or not re.match(r"^[\w./+-]+$", word)
                    or word.startswith(("$", "./", "-")) or "=" in word):
                continue
            if word.startswith("/"):
                resolved = word if os.path.exists(word) else None
            elif "/" in word:
                continue  # a path inside the project
            else:
                resolved = shutil.which(word, path=SYSTEM_PATH)
            if resolved:
                used.append((resolved, os.path.relpath(path, ROOT)))
    # C++ sources that start programs: absolute paths in string literals, popen/system commands.
    for folder in ("tests", "src", "bench", "fuzz"):
        for path in glob.glob(os.path.join(ROOT, folder, "**", "*.cc"), recursive=True) + \
                glob.glob(os.path.join(ROOT, folder, "**", "*.h"), recursive=True):
            text = open(path, encoding="utf-8", errors="replace").read()
            relative = os.path.relpath(path, ROOT)
            for literal in re.findall(r'"(/(?:usr|bin|sbin|lib)/[^"\s]*)"', text):
                if os.path.exists(literal):
                    used.append((literal, relative))
            for word in re.findall(r'(?:popen|system)\s*\(\s*\(?\s*"([\w.+-]+)', text):
                resolved = shutil.which(word, path=SYSTEM_PATH)
                if resolved:
                    used.append((resolved, relative))
    return used


# ---------------------------------------------------------------------------------------------


def project_owned(path, build_dirs):
    real = os.path.realpath(path)
    roots = [ROOT] + [os.path.realpath(b) for b in build_dirs]
    return any(real == r or real.startswith(r + os.sep) for r in roots) or \
        any(path == r or path.startswith(r + os.sep) for r in [ROOT] + list(build_dirs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", action="append",
                        help="a package list (default: scripts/packages.txt)")
    parser.add_argument("--bench-packages", action="append",
                        help="the lists bench/run.sh may use as well (default: scripts/packages-bench.txt)")
    parser.add_argument("--no-daemon", action="store_true", help="do not start deviceopsd")
    parser.add_argument("build_dirs", nargs="+")
    arguments = parser.parse_args()
    lists = arguments.packages or [os.path.join(ROOT, "scripts", "packages.txt")]
    bench_lists = arguments.bench_packages or [os.path.join(ROOT, "scripts", "packages-bench.txt")]
    build_dirs = [os.path.abspath(b) for b in arguments.build_dirs]
    for build_dir in build_dirs:
        if not os.path.exists(os.path.join(build_dir, "build.ninja")):
            fail_usage(f"{build_dir} is not a configured build directory (no build.ninja)")

    packages = parse_dpkg_status()
    named = [n for path in lists for n in read_list(path)]
    bench_named = named + [n for path in bench_lists for n in read_list(path)]
    base = closure([name for name, info in packages.items() if info["base"]], packages)
    allowed = closure(named, packages) | base
    bench_allowed = closure(bench_named, packages) | base
    owners = file_owners()

    used = []
    for build_dir in build_dirs:
        used += headers(build_dir)
        used += linked_libraries(build_dir)
        if not arguments.no_daemon:
            used += daemon_mappings(build_dir)
    used += python_modules()
    used += programs()

    # One check per file; a file the core uses is judged by the core's lists, not the bench's.
    first_user = {}
    for path, who in used:
        if path not in first_user or first_user[path].startswith("bench/"):
            first_user[path] = who
    problems, checked = {}, 0
    for path, who in first_user.items():
        if path.startswith("<missing>"):
            problems[(path[len("<missing> "):], "not installed")] = who
            continue
        if project_owned(path, build_dirs):
            continue
        checked += 1
        package = owner_of(path, owners)
        if package is None:
            if any(path.startswith(prefix) or os.path.realpath(path).startswith(prefix)
                   for prefix in MACHINE_PREREQUISITES):
                continue
            problems[(path, "no Debian package")] = who
            continue
        permitted = bench_allowed if who.startswith("bench/") else allowed
        if package not in permitted:
            problems[(path, package)] = who

    files = checked
    if problems:
        for (path, package), who in sorted(problems.items(), key=lambda item: (item[0][1], item[0][0])):
            if package in ("not installed", "no Debian package"):
                print(f"check-packages: {path}: {package} (used by {who})")
            else:
                print(f"check-packages: {path}: package {package} is not in the setup lists "
                      f"nor pulled in by them (used by {who}); add {package} to scripts/packages.txt")
        print(f"check-packages: {len(problems)} problem(s) in {files} files checked", file=sys.stderr)
        return 1
    print(f"check-packages: {files} files checked; every one comes from a package the setup "
          f"lists install ({len(named)} named, {len(allowed)} with their dependencies)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
