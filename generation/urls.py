from django.urls import path

from generation.views import history, pages, usage

app_name = "generation"
urlpatterns = [
    path("", history.history, name="history"),
    path("export/", history.history_export, name="export"),
    path("delete/", history.history_delete_selected, name="delete_selected"),
    path("new/<slug:slug>/", pages.generation_create_view, name="create"),
    path("usage/", usage.usage, name="usage"),
    path("usage/staff/", usage.staff_usage, name="staff_usage"),
    path("<uuid:pk>/", pages.generation_detail, name="detail"),
    path("<uuid:pk>/stream/", pages.generation_stream, name="stream"),
    path("<uuid:pk>/regenerate/", pages.generation_regenerate, name="regenerate"),
    path("<uuid:pk>/rerun/", pages.generation_rerun, name="rerun"),
    path("<uuid:pk>/workspace/", pages.generation_workspace, name="workspace"),
    path("<uuid:pk>/cancel/", pages.generation_cancel_view, name="cancel"),
    path("<uuid:pk>/continue/", pages.generation_continue_view, name="continue"),
    path("<uuid:pk>/delete/", history.generation_delete, name="delete"),
    path("<uuid:pk>/download/<str:format_name>/", pages.generation_download, name="download"),
]
