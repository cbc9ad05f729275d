"""mpgui: the application around core.  The scenario catalog (``scenarios``), the run history
(``history``), the command line (``cli``) and the Qt desktop app (``gui``, the only part that imports Qt).

The app and the command line never run a workload themselves: scenarios run in the runner's process tree
(``core.trace.runner``); the app starts the runner (``main.py run ... --control-stdin``), tails its run
file and draws it.
"""
