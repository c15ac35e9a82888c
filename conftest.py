"""Collection rules for the whole repository (tests/ and the package's doctests).

The default ``pytest`` is the loop a contributor runs after each change: tests marked
``slow`` (exports, TFLite, notebooks, the browser, subprocesses, real data, training runs
of more than a few seconds) are left out. ``pytest --run-slow`` runs everything; it is the
README's test command and what CI runs.
"""

collect_ignore = ["unet_tf/__main__.py"]  # `python -m unet_tf` runs the command line


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true",
                     help="also run the tests marked slow (the README's test command and CI)")


def pytest_report_header(config):
    if not config.getoption("--run-slow") and not config.option.markexpr:
        return "slow tests left out: `pytest --run-slow` runs them too (as CI does)"
    return None


def pytest_collection_modifyitems(config, items):
    """Leave out the slow tests unless asked for, and docstring examples that are all
    ``+SKIP`` (they need a trained model or a photo): they document, they do not test, and
    would otherwise read as skipped tests."""
    import doctest

    from _pytest.doctest import DoctestItem

    def all_skipped(item) -> bool:
        examples = item.dtest.examples
        return bool(examples) and all(e.options.get(doctest.SKIP) for e in examples)

    def left_out(item) -> bool:
        if isinstance(item, DoctestItem):
            return all_skipped(item)
        # -m chooses for itself (`pytest -m slow` runs only the slow ones)
        slow = not config.getoption("--run-slow") and not config.option.markexpr
        return slow and item.get_closest_marker("slow") is not None

    keep = [i for i in items if not left_out(i)]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
