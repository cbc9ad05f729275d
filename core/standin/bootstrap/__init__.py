"""Not imported: this folder is put on a traced program's PYTHONPATH for its ``sitecustomize`` (see
``core.standin``).  It is a package only so that installing core installs it too."""
