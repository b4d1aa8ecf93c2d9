"""The studio's URLs, the studio's error handlers, and views that fail on purpose."""

from django.core.exceptions import BadRequest, PermissionDenied
from django.urls import path

from studio.urls import handler400, handler403, handler404, handler500, urlpatterns


def broken(request):
    raise RuntimeError("a bug")


def forbidden(request):
    raise PermissionDenied


def bad(request):
    raise BadRequest("nonsense")


urlpatterns = [
    path("broken/", broken),
    path("forbidden/", forbidden),
    path("bad/", bad),
    path("api/v1/broken", broken),
    *urlpatterns,
]
__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
