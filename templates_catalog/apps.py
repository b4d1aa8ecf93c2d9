from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TemplatesCatalogConfig(AppConfig):
    name = "templates_catalog"
    verbose_name = _("Template catalogue")
