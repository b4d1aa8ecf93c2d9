from django.urls import path

from generation import views

app_name = "generation"
urlpatterns = [
    path("", views.history, name="history"),
    path("export/", views.history_export, name="export"),
    path("delete/", views.history_delete_selected, name="delete_selected"),
    path("new/<slug:slug>/", views.generation_create_view, name="create"),
    path("usage/", views.usage, name="usage"),
    path("usage/staff/", views.staff_usage, name="staff_usage"),
    path("<uuid:pk>/", views.generation_detail, name="detail"),
    path("<uuid:pk>/stream/", views.generation_stream, name="stream"),
    path("<uuid:pk>/regenerate/", views.generation_regenerate, name="regenerate"),
    path("<uuid:pk>/cancel/", views.generation_cancel_view, name="cancel"),
    path("<uuid:pk>/continue/", views.generation_continue_view, name="continue"),
    path("<uuid:pk>/delete/", views.generation_delete, name="delete"),
]
