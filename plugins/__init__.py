"""The built-in plugins shipped with helpdesk (each registered in the ``helpdesk`` entry-point
group of the root ``pyproject.toml``)."""
