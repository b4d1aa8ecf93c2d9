from django.contrib import admin
from django.urls import include, path

from studio import views

urlpatterns = [
    path("", include("templates_catalog.urls")),
    path("generations/", include("generation.urls")),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
