"""The `ferry` command of a pip-installed ferry: the C program in the package."""
import os
import sys


def main():
    exe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ferry")
    os.execv(exe, ["ferry"] + sys.argv[1:])
