"""mpgui's command line (``python main.py COMMAND``): ``main`` parses and runs one command."""
from .main import main  # noqa: F401
