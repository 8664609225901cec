"""Runs every test_* function of the given test files in order, without pytest (the files are plain
asserts, so pytest runs them too). Exit 0 when all pass, 1 when one fails, 77 (ctest's Skipped) when
every test skipped (unittest.SkipTest, with its reason printed)."""

import importlib.util
import os
import sys
import tempfile
import traceback
import unittest


def main(paths):
    passed, failed, skipped = 0, 0, 0
    for path in paths:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), path)
        spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name in sorted(n for n in vars(module) if n.startswith("test_") and callable(getattr(module, n))):
            test = getattr(module, name)
            with tempfile.TemporaryDirectory(prefix="fusecheck-python-") as tmp:
                try:
                    test(tmp) if test.__code__.co_argcount == 1 else test()
                except unittest.SkipTest as reason:
                    skipped += 1
                    print(f"SKIP {name}: {reason}")
                    continue
                except Exception:
                    failed += 1
                    print(f"FAIL {name}")
                    traceback.print_exc()
                    continue
            passed += 1
            print(f"ok   {name}")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    if failed:
        return 1
    return 77 if skipped and not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
