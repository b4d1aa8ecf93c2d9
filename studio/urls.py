from django.contrib import admin
from django.urls import include, path

from studio import views

handler400 = "studio.errors.bad_request"
handler403 = "studio.errors.permission_denied"
handler404 = "studio.errors.page_not_found"
handler500 = "studio.errors.server_error"

urlpatterns = [
    path("", include("templates_catalog.urls")),
    path("generations/", include("generation.urls")),
    path("api/v1/", include("studio.api_urls")),
    path("accounts/login/", views.StudioLoginView.as_view(), name="login"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/tokens/", views.api_tokens, name="api_tokens"),
    path("accounts/tokens/<int:pk>/revoke/", views.api_token_revoke_view, name="api_token_revoke"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
