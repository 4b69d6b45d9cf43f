"""What the tests of the roles' shipped Python files share."""
import importlib.util
import os

ROLES = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'roles')


def role_file_module(role, name, module_name):
    """A fresh module from roles/<role>/files/<name> (the files are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(module_name, os.path.join(ROLES, role, 'files', name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
