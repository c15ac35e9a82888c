"""Collection rules for the whole repository (tests/ and the package's doctests)."""


def pytest_collection_modifyitems(config, items):
    """Deselect docstring examples that are all ``+SKIP`` (they need a trained model or a
    photo): they document, they do not test, and would otherwise read as skipped tests."""
    import doctest

    from _pytest.doctest import DoctestItem

    def all_skipped(item) -> bool:
        examples = item.dtest.examples
        return bool(examples) and all(e.options.get(doctest.SKIP) for e in examples)

    keep = [i for i in items if not (isinstance(i, DoctestItem) and all_skipped(i))]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
