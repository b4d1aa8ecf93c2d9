from django.urls import path

from templates_catalog import views

app_name = "catalog"
urlpatterns = [
    path("", views.home, name="home"),
    path("templates/", views.template_list, name="list"),
    path("categories/<slug:category_slug>/", views.template_list, name="category"),
    path("t/<slug:slug>/", views.template_detail, name="template"),
    path("t/<slug:slug>/favourite/", views.template_favourite, name="favourite"),
]
