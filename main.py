"""mpgui entry point: ``python main.py`` opens the app; ``python main.py COMMAND ...`` runs the command line.

The one place that knows every part: the app (``mpgui.gui``), the command line (``mpgui.cli``), and the
hidden commands this program is started again with (a scenario's main process, a run's guardian and its
collector, a script run by the packaged app, the self-test's window).

``freeze_support()`` comes first under the main guard: in the packaged app, the same executable is started
again as every spawned worker, and freeze_support turns those starts into workers instead of new copies of
the app.
"""
import sys

#: First words that mean the command line (anything else, or nothing, opens the app).
COMMANDS = ("trace", "export", "run", "runs", "compare", "scenarios", "selftest", "-h", "--help")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_scenario-host":          # a scenario's main process, started by the runner
        from mpgui.scenario_host import main as host_main
        return host_main(argv[1:])
    if argv and argv[0] == "_run-guard":              # ends a run's tree if its runner dies (packaged app)
        from core.trace.procs import guard_main
        return guard_main(argv[1:])
    if argv and argv[0] == "_run-collect":            # drains a run's rings into its run file (packaged app)
        from core.trace.collect_process import collect_main
        return collect_main(argv[1:])
    if argv and argv[0] == "_run-script":             # the packaged app standing in for `python SCRIPT`
        from mpgui.script_host import main as script_main
        return script_main(argv[1:])
    if argv and argv[0] == "_show-run":               # the self-test's window check, in a process of its own
        from mpgui.gui.selftest_window import show_run
        return show_run(argv[1])
    rest = command_words(argv)
    if rest and rest[0] in COMMANDS:
        from mpgui.cli import main as cli_main
        return cli_main(argv)
    if rest[:1] in (["gui"], ["open"]):
        argv = argv[:len(argv) - len(rest)] + rest[1:]
    from mpgui.gui.app import main as gui_main
    return gui_main(argv)


def command_words(argv):
    """The command line's words after the options every command takes (``--home DIR``)."""
    return argv[2:] if argv[:1] == ["--home"] else argv


def exit_quickly(run):
    """Exit with what ``run()`` returns (or the SystemExit it raises), as the interpreter would, minus tearing
    down every module one by one: with numpy, sqlite and psutil loaded that takes 40 to 100 ms after the
    command's work is done, a large part of what ``trace`` adds to a short program.  Threads are joined, exit
    handlers run and output flushed first, as at a normal exit."""
    import atexit
    import os
    import threading
    try:
        code = run()
    except SystemExit as e:
        code = e.code
    for t in threading.enumerate():
        if t is not threading.main_thread() and not t.daemon:
            t.join()
    atexit._run_exitfuncs()
    if code is not None and not isinstance(code, int):      # sys.exit("message")
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):                       # a closed pipe: what the normal exit ignores too
            pass
    os._exit(code or 0)


if __name__ == "__main__":
    import core
    core.freeze_support()
    _rest = command_words(sys.argv[1:])
    if _rest[:1] in (["trace"], ["run"]) and not {"-h", "--help"} & set(_rest[1:2]):
        # The run's collector process loads its modules while this one loads the command line's.
        from core.trace.collect_process import start_spare
        start_spare()
    if _rest and _rest[0] in COMMANDS:
        exit_quickly(main)
    sys.exit(main())
