"""The command line: one module per group of commands, all joined in main.py."""
