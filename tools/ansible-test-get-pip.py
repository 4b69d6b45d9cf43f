"""Stand-in for ansible-test's pip bootstrap script, whose download host this machine cannot reach.

ansible-test runs the script it caches as ~/.ansible/test/cache/get_pip_<X_Y>.py inside an empty
virtualenv to put pip <X.Y> there (its own error message says the script may be saved there by hand).
tools/sanity.sh copies this file to that path and puts the matching pip wheel, from PyPI, beside it;
this runs pip straight from that wheel to install the requested packages.
"""
import glob
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
version = os.path.basename(__file__)[len('get_pip_'):-len('.py')].replace('_', '.')
wheel = glob.glob(os.path.join(here, 'pip-%s-py3-none-any.whl' % version))[0]
sys.path.insert(0, wheel)
from pip._internal.cli.main import main  # noqa: E402  pylint: disable=wrong-import-position

args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
sys.exit(main(['install', '--upgrade', '--force-reinstall'] + args))
