from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from generation.models import Generation
from templates_catalog.catalog_io import import_catalog_files
from templates_catalog.models import Category, FavouriteTemplate, Template

CATALOG = Path(settings.BASE_DIR) / "fixtures" / "catalog"


@pytest.fixture(scope="module")
def catalogue(django_db_setup, django_db_blocker):
    """The shipped catalogue, loaded once for the module that asks for it."""
    with django_db_blocker.unblock():
        import_catalog_files(sorted(CATALOG.glob("*.yaml")))
        yield
        # It was committed outside the tests' transactions: leave nothing behind.
        Generation.objects.all().delete()
        FavouriteTemplate.objects.all().delete()
        Template.objects.all().delete()
        Category.objects.all().delete()


@pytest.fixture
def db_with_catalogue(catalogue, db):
    return None
