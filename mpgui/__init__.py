"""mpgui: the Qt desktop app.  Widgets bind to models; models read runs through core.trace.

Nothing here runs multiprocessing itself: workloads run in the runner's process tree (core.runner), and
the app only starts the runner (``main.py run ... --control-stdin``), tails its run file and draws it.
"""
