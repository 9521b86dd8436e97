"""Reports whether the dynamic loader was told to inject libraries into this process, and
drops the variables so that nothing this program starts later inherits them."""
import os
import sys

def injected():
    found = {}
    preload = os.environ.get("LD_PRELOAD")
    if preload:
        found["preload"] = preload.split(":")
    if "LD_AUDIT" in os.environ:
        found["audit"] = os.getenv("LD_AUDIT", "").split(":")
    return found


def sanitised_environment():
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if "LD_AUDIT" in env:
        del env["LD_AUDIT"]
    return env


def main():
    found = injected()
    for name, libraries in sorted(found.items()):
        print(f"{name}: {', '.join(libraries)}", file=sys.stderr)
    os.environ.pop("LD_PRELOAD", None)
    os.unsetenv("LD_AUDIT")
    print(len(sanitised_environment()), "variables kept")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
