import os
import sys

# The numpy reference (tests/_reference.py) is imported as a plain module.
sys.path.insert(0, os.path.dirname(__file__))
