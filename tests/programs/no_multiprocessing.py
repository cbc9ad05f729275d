"""A program that never touches multiprocessing: it must run exactly as it would without the tracer, import
nothing more, and see the same sys.path."""
import sys

if __name__ == "__main__":
    print(sum(i * i for i in range(1000)))
    print([name for name in sorted(sys.modules) if name.split(".")[0] in ("multiprocessing", "concurrent", "core")])
    print(sys.argv[1:])
    print(sys.path)
