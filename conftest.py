"""pytest set-up shared by the unit tests and the nbval notebook checks."""


def pytest_collectstart(collector):
    # Notebook outputs that legitimately vary between runs are not compared:
    # progress bars and warnings (stderr), rich HTML tables and images.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr", "text/html", "image/png", "image/jpeg", "application/pdf")
