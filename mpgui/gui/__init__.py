"""The Qt desktop app: the main window and its views.  The only part of mpgui (and of the project) that
imports PySide6 or pyqtgraph.  Views draw snapshots built off the Qt thread; nothing here touches a run
file, the history or a process on the Qt thread."""
