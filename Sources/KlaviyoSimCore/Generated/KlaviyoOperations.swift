// GENERATED FILE: do not edit by hand.
// Generator: scripts/check/gen-klaviyo-ops.py, from Klaviyo's OpenAPI spec (info.version 2025-10-15).
// Regenerate: python3 scripts/check/gen-klaviyo-ops.py (spec path from $KLAVIYO_OPENAPI_SPEC).

extension KlaviyoOperation {
    /// Every operation of Klaviyo's API revision 2025-10-15, in spec order.
    static let all: [KlaviyoOperation] = [
        KlaviyoOperation(
            method: "GET", path: "/api/accounts", operationId: "get_accounts",
            burst: 1, steady: 15, daily: nil,
            scopes: ["accounts:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/accounts/{id}", operationId: "get_account",
            burst: 1, steady: 15, daily: nil,
            scopes: ["accounts:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/campaigns", operationId: "get_campaigns",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/campaigns", operationId: "create_campaign",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:write"],
            requestSchema:
                #"{"properties":{"data":{"properties":{"attributes":{"properties":{"audiences":{"properties":{"excluded":{"items":{"type":"string"},"nullable":true,"type":"array"},"included":{"items":{"type":"string"},"type":"array"}},"required":["included"],"type":"object"},"campaign-messages":{"properties":{"data":{"items":{"properties":{"attributes":{"properties":{"definition":{"oneOf":[{"properties":{"channel":{"enum":["email"],"type":"string"},"content":{"properties":{"bcc_email":{"nullable":true,"type":"string"},"cc_email":{"nullable":true,"type":"string"},"from_email":{"nullable":true,"type":"string"},"from_label":{"nullable":true,"type":"string"},"preview_text":{"nullable":true,"type":"string"},"reply_to_email":{"nullable":true,"type":"string"},"subject":{"nullable":true,"type":"string"}},"type":"object"},"label":{"nullable":true,"type":"string"}},"required":["channel"],"type":"object"},{"properties":{"channel":{"enum":["sms"],"type":"string"},"content":{"properties":{"body":{"nullable":true,"type":"string"}},"type":"object"},"render_options":{"properties":{"add_info_link":{"nullable":true,"type":"boolean"},"add_opt_out_language":{"nullable":true,"type":"boolean"},"add_org_prefix":{"nullable":true,"type":"boolean"},"shorten_links":{"nullable":true,"type":"boolean"}},"type":"object"}},"required":["channel"],"type":"object"},{"properties":{"channel":{"enum":["mobile_push"],"type":"string"},"content":{"properties":{"body":{"type":"string"},"dynamic_image":{"nullable":true,"type":"string"},"title":{"nullable":true,"type":"string"}},"required":["body"],"type":"object"},"kv_pairs":{"nullable":true,"type":"object"},"notification_type":{"enum":["standard"],"type":"string"},"options":{"properties":{"badge":{"nullable":true,"oneOf":[{"properties":{"badge_options":{"nullable":true,"oneOf":[{"properties":{"badge_config":{"enum":["increment_one"]}},"required":["badge_config"],"type":"object"},{"properties":{"badge_config":{"enum":["set_count"]},"value":{"type":"string"}},"required":["badge_config","value"],"type":"object"},{"properties":{"badge_config":{"enum":["set_property"]},"set_from_property":{"type":"string"}},"required":["badge_config","set_from_property"],"type":"object"}]},"display":{"enum":[true],"type":"boolean"}},"required":["display"],"type":"object"},{"properties":{"display":{"enum":[false],"type":"boolean"}},"required":["display"],"type":"object"}]},"on_open":{"nullable":true,"oneOf":[{"properties":{"type":{"enum":["open_app"],"type":"string"}},"required":["type"],"type":"object"},{"properties":{"android_deep_link":{"nullable":true,"type":"string"},"ios_deep_link":{"nullable":true,"type":"string"},"type":{"enum":["deep_link"],"type":"string"}},"required":["type"],"type":"object"}]},"play_sound":{"nullable":true,"type":"boolean"}},"type":"object"}},"required":["channel","content"],"type":"object"},{"properties":{"channel":{"enum":["mobile_push"],"type":"string"},"kv_pairs":{"nullable":true,"type":"object"},"notification_type":{"enum":["silent"],"type":"string"}},"required":["channel"],"type":"object"}]}},"required":["definition"],"type":"object"},"relationships":{"properties":{"image":{"properties":{"data":{"properties":{"id":{"type":"string"},"type":{"enum":["image"],"type":"string"}},"required":["type","id"],"type":"object"}},"type":"object"}},"type":"object"},"type":{"enum":["campaign-message"],"type":"string"}},"required":["type","attributes"],"type":"object"},"type":"array"}},"required":["data"],"type":"object"},"name":{"type":"string"},"send_options":{"nullable":true,"oneOf":[{"properties":{"use_smart_sending":{"nullable":true,"type":"boolean"}},"type":"object"},{"properties":{"use_smart_sending":{"nullable":true,"type":"boolean"}},"type":"object"},{"properties":{"use_smart_sending":{"nullable":true,"type":"boolean"}},"type":"object"}]},"send_strategy":{"nullable":true,"oneOf":[{"properties":{"datetime":{"format":"date-time","type":"string"},"method":{"enum":["static"],"type":"string"},"options":{"nullable":true,"oneOf":[{"properties":{"is_local":{"enum":[true],"type":"boolean"},"send_past_recipients_immediately":{"type":"boolean"}},"required":["is_local"],"type":"object"},{"properties":{"is_local":{"enum":[false],"type":"boolean"}},"required":["is_local"],"type":"object"}]}},"required":["method","datetime"],"type":"object"},{"properties":{"datetime":{"format":"date-time","type":"string"},"method":{"enum":["throttled"],"type":"string"},"throttle_percentage":{"enum":[10,11,13,14,17,20,25,33,50],"type":"integer"}},"required":["method","datetime","throttle_percentage"],"type":"object"},{"properties":{"method":{"enum":["immediate"],"type":"string"}},"required":["method"],"type":"object"},{"properties":{"date":{"type":"string"},"method":{"enum":["smart_send_time"],"type":"string"}},"required":["method","date"],"type":"object"}]},"tracking_options":{"nullable":true,"oneOf":[{"properties":{"add_tracking_params":{"nullable":true,"type":"boolean"},"custom_tracking_params":{"items":{"oneOf":[{"properties":{"name":{"type":"string"},"type":{"enum":["dynamic"],"type":"string"},"value":{"enum":["campaign_id","campaign_name","campaign_name_id","campaign_name_send_day","email_subject","group_id","group_name","group_name_id","link_alt_text","message_type","profile_external_id","profile_id"],"type":"string"}},"required":["type","value","name"],"type":"object"},{"properties":{"name":{"type":"string"},"type":{"enum":["static"],"type":"string"},"value":{"type":"string"}},"required":["type","value","name"],"type":"object"}]},"nullable":true,"type":"array"},"is_tracking_clicks":{"nullable":true,"type":"boolean"},"is_tracking_opens":{"nullable":true,"type":"boolean"}},"type":"object"},{"properties":{"add_tracking_params":{"nullable":true,"type":"boolean"},"custom_tracking_params":{"items":{"oneOf":[{"properties":{"name":{"type":"string"},"type":{"enum":["dynamic"],"type":"string"},"value":{"enum":["campaign_id","campaign_name","campaign_name_id","campaign_name_send_day","email_subject","group_id","group_name","group_name_id","link_alt_text","message_type","profile_external_id","profile_id"],"type":"string"}},"required":["type","value","name"],"type":"object"},{"properties":{"name":{"type":"string"},"type":{"enum":["static"],"type":"string"},"value":{"type":"string"}},"required":["type","value","name"],"type":"object"}]},"nullable":true,"type":"array"}},"type":"object"}]}},"required":["name","audiences","campaign-messages"],"type":"object"},"type":{"enum":["campaign"],"type":"string"}},"required":["type","attributes"],"type":"object"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "GET", path: "/api/campaigns/{id}", operationId: "get_campaign",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/campaigns/{id}", operationId: "update_campaign",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:write"],
            requestSchema:
                #"{"properties":{"data":{"properties":{"attributes":{"properties":{"audiences":{"properties":{"excluded":{"items":{"type":"string"},"nullable":true,"type":"array"},"included":{"items":{"type":"string"},"nullable":true,"type":"array"}},"type":"object"},"name":{"nullable":true,"type":"string"},"send_options":{"nullable":true,"oneOf":[{"properties":{"use_smart_sending":{"nullable":true,"type":"boolean"}},"type":"object"},{"properties":{"use_smart_sending":{"nullable":true,"type":"boolean"}},"type":"object"},{"properties":{"use_smart_sending":{"nullable":true,"type":"boolean"}},"type":"object"}]},"send_strategy":{"nullable":true,"oneOf":[{"properties":{"datetime":{"format":"date-time","type":"string"},"method":{"enum":["static"],"type":"string"},"options":{"nullable":true,"oneOf":[{"properties":{"is_local":{"enum":[true],"type":"boolean"},"send_past_recipients_immediately":{"type":"boolean"}},"required":["is_local"],"type":"object"},{"properties":{"is_local":{"enum":[false],"type":"boolean"}},"required":["is_local"],"type":"object"}]}},"required":["method","datetime"],"type":"object"},{"properties":{"datetime":{"format":"date-time","type":"string"},"method":{"enum":["throttled"],"type":"string"},"throttle_percentage":{"enum":[10,11,13,14,17,20,25,33,50],"type":"integer"}},"required":["method","datetime","throttle_percentage"],"type":"object"},{"properties":{"method":{"enum":["immediate"],"type":"string"}},"required":["method"],"type":"object"},{"properties":{"date":{"type":"string"},"method":{"enum":["smart_send_time"],"type":"string"}},"required":["method","date"],"type":"object"}]},"tracking_options":{"nullable":true,"oneOf":[{"properties":{"add_tracking_params":{"nullable":true,"type":"boolean"},"custom_tracking_params":{"items":{"oneOf":[{"properties":{"name":{"type":"string"},"type":{"enum":["dynamic"],"type":"string"},"value":{"enum":["campaign_id","campaign_name","campaign_name_id","campaign_name_send_day","email_subject","group_id","group_name","group_name_id","link_alt_text","message_type","profile_external_id","profile_id"],"type":"string"}},"required":["type","value","name"],"type":"object"},{"properties":{"name":{"type":"string"},"type":{"enum":["static"],"type":"string"},"value":{"type":"string"}},"required":["type","value","name"],"type":"object"}]},"nullable":true,"type":"array"},"is_tracking_clicks":{"nullable":true,"type":"boolean"},"is_tracking_opens":{"nullable":true,"type":"boolean"}},"type":"object"},{"properties":{"add_tracking_params":{"nullable":true,"type":"boolean"},"custom_tracking_params":{"items":{"oneOf":[{"properties":{"name":{"type":"string"},"type":{"enum":["dynamic"],"type":"string"},"value":{"enum":["campaign_id","campaign_name","campaign_name_id","campaign_name_send_day","email_subject","group_id","group_name","group_name_id","link_alt_text","message_type","profile_external_id","profile_id"],"type":"string"}},"required":["type","value","name"],"type":"object"},{"properties":{"name":{"type":"string"},"type":{"enum":["static"],"type":"string"},"value":{"type":"string"}},"required":["type","value","name"],"type":"object"}]},"nullable":true,"type":"array"}},"type":"object"}]}},"type":"object"},"id":{"type":"string"},"type":{"enum":["campaign"],"type":"string"}},"required":["type","id","attributes"],"type":"object"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "DELETE", path: "/api/campaigns/{id}", operationId: "delete_campaign",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/campaign-messages/{id}", operationId: "get_campaign_message",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/campaign-messages/{id}", operationId: "update_campaign_message",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/campaign-send-jobs/{id}", operationId: "get_campaign_send_job",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/campaign-send-jobs/{id}", operationId: "cancel_campaign_send",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:write"],
            requestSchema:
                #"{"properties":{"data":{"properties":{"attributes":{"properties":{"action":{"enum":["cancel","revert"],"type":"string"}},"required":["action"],"type":"object"},"id":{"type":"string"},"type":{"enum":["campaign-send-job"],"type":"string"}},"required":["type","id","attributes"],"type":"object"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "GET", path: "/api/campaign-recipient-estimation-jobs/{id}",
            operationId: "get_campaign_recipient_estimation_job",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/campaign-recipient-estimations/{id}",
            operationId: "get_campaign_recipient_estimation",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/campaign-clone", operationId: "create_campaign_clone",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/campaign-message-assign-template",
            operationId: "assign_template_to_campaign_message",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/campaign-send-jobs", operationId: "send_campaign",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:write"],
            requestSchema:
                #"{"properties":{"data":{"properties":{"id":{"type":"string"},"type":{"enum":["campaign-send-job"],"type":"string"}},"required":["type","id"],"type":"object"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "POST", path: "/api/campaign-recipient-estimation-jobs",
            operationId: "refresh_campaign_recipient_estimation",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/campaign-messages/{id}/campaign",
            operationId: "get_campaign_for_campaign_message",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/campaign-messages/{id}/relationships/campaign",
            operationId: "get_campaign_id_for_campaign_message",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/campaign-messages/{id}/template",
            operationId: "get_template_for_campaign_message",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:read", "templates:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/campaign-messages/{id}/relationships/template",
            operationId: "get_template_id_for_campaign_message",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:read", "templates:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/campaign-messages/{id}/image", operationId: "get_image_for_campaign_message",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:read", "images:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/campaign-messages/{id}/relationships/image",
            operationId: "get_image_id_for_campaign_message",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:read", "images:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/campaign-messages/{id}/relationships/image",
            operationId: "update_image_for_campaign_message",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:write", "images:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/campaigns/{id}/tags", operationId: "get_tags_for_campaign",
            burst: 3, steady: 60, daily: nil,
            scopes: ["campaigns:read", "tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/campaigns/{id}/relationships/tags", operationId: "get_tag_ids_for_campaign",
            burst: 3, steady: 60, daily: nil,
            scopes: ["campaigns:read", "tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/campaigns/{id}/campaign-messages", operationId: "get_messages_for_campaign",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/campaigns/{id}/relationships/campaign-messages",
            operationId: "get_message_ids_for_campaign",
            burst: 10, steady: 150, daily: nil,
            scopes: ["campaigns:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-items", operationId: "get_catalog_items",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/catalog-items", operationId: "create_catalog_item",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-items/{id}", operationId: "get_catalog_item",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/catalog-items/{id}", operationId: "update_catalog_item",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/catalog-items/{id}", operationId: "delete_catalog_item",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-variants", operationId: "get_catalog_variants",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/catalog-variants", operationId: "create_catalog_variant",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-variants/{id}", operationId: "get_catalog_variant",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/catalog-variants/{id}", operationId: "update_catalog_variant",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/catalog-variants/{id}", operationId: "delete_catalog_variant",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-categories", operationId: "get_catalog_categories",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/catalog-categories", operationId: "create_catalog_category",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-categories/{id}", operationId: "get_catalog_category",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/catalog-categories/{id}", operationId: "update_catalog_category",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/catalog-categories/{id}", operationId: "delete_catalog_category",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-item-bulk-create-jobs",
            operationId: "get_bulk_create_catalog_items_jobs",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/catalog-item-bulk-create-jobs", operationId: "bulk_create_catalog_items",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-item-bulk-create-jobs/{job_id}",
            operationId: "get_bulk_create_catalog_items_job",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-item-bulk-update-jobs",
            operationId: "get_bulk_update_catalog_items_jobs",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/catalog-item-bulk-update-jobs", operationId: "bulk_update_catalog_items",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-item-bulk-update-jobs/{job_id}",
            operationId: "get_bulk_update_catalog_items_job",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-item-bulk-delete-jobs",
            operationId: "get_bulk_delete_catalog_items_jobs",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/catalog-item-bulk-delete-jobs", operationId: "bulk_delete_catalog_items",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-item-bulk-delete-jobs/{job_id}",
            operationId: "get_bulk_delete_catalog_items_job",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-variant-bulk-create-jobs", operationId: "get_bulk_create_variants_jobs",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/catalog-variant-bulk-create-jobs", operationId: "bulk_create_catalog_variants",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-variant-bulk-create-jobs/{job_id}",
            operationId: "get_bulk_create_variants_job",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-variant-bulk-update-jobs", operationId: "get_bulk_update_variants_jobs",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/catalog-variant-bulk-update-jobs", operationId: "bulk_update_catalog_variants",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-variant-bulk-update-jobs/{job_id}",
            operationId: "get_bulk_update_variants_job",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-variant-bulk-delete-jobs", operationId: "get_bulk_delete_variants_jobs",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/catalog-variant-bulk-delete-jobs", operationId: "bulk_delete_catalog_variants",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-variant-bulk-delete-jobs/{job_id}",
            operationId: "get_bulk_delete_variants_job",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-category-bulk-create-jobs",
            operationId: "get_bulk_create_categories_jobs",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/catalog-category-bulk-create-jobs",
            operationId: "bulk_create_catalog_categories",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-category-bulk-create-jobs/{job_id}",
            operationId: "get_bulk_create_categories_job",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-category-bulk-update-jobs",
            operationId: "get_bulk_update_categories_jobs",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/catalog-category-bulk-update-jobs",
            operationId: "bulk_update_catalog_categories",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-category-bulk-update-jobs/{job_id}",
            operationId: "get_bulk_update_categories_job",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-category-bulk-delete-jobs",
            operationId: "get_bulk_delete_categories_jobs",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/catalog-category-bulk-delete-jobs",
            operationId: "bulk_delete_catalog_categories",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-category-bulk-delete-jobs/{job_id}",
            operationId: "get_bulk_delete_categories_job",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/back-in-stock-subscriptions", operationId: "create_back_in_stock_subscription",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:write", "profiles:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-categories/{id}/items", operationId: "get_items_for_catalog_category",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-categories/{id}/relationships/items",
            operationId: "get_item_ids_for_catalog_category",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/catalog-categories/{id}/relationships/items",
            operationId: "add_items_to_catalog_category",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/catalog-categories/{id}/relationships/items",
            operationId: "update_items_for_catalog_category",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/catalog-categories/{id}/relationships/items",
            operationId: "remove_items_from_catalog_category",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-items/{id}/variants", operationId: "get_variants_for_catalog_item",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-items/{id}/relationships/variants",
            operationId: "get_variant_ids_for_catalog_item",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-items/{id}/categories", operationId: "get_categories_for_catalog_item",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/catalog-items/{id}/relationships/categories",
            operationId: "get_category_ids_for_catalog_item",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/catalog-items/{id}/relationships/categories",
            operationId: "add_categories_to_catalog_item",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/catalog-items/{id}/relationships/categories",
            operationId: "update_categories_for_catalog_item",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/catalog-items/{id}/relationships/categories",
            operationId: "remove_categories_from_catalog_item",
            burst: 75, steady: 700, daily: nil,
            scopes: ["catalogs:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/coupons", operationId: "get_coupons",
            burst: 75, steady: 700, daily: nil,
            scopes: ["coupons:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/coupons", operationId: "create_coupon",
            burst: 3, steady: 60, daily: nil,
            scopes: ["coupons:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/coupons/{id}", operationId: "get_coupon",
            burst: 75, steady: 700, daily: nil,
            scopes: ["coupons:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/coupons/{id}", operationId: "update_coupon",
            burst: 3, steady: 60, daily: nil,
            scopes: ["coupons:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/coupons/{id}", operationId: "delete_coupon",
            burst: 3, steady: 60, daily: nil,
            scopes: ["coupons:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/coupon-codes", operationId: "get_coupon_codes",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["coupon-codes:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/coupon-codes", operationId: "create_coupon_code",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["coupon-codes:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/coupon-codes/{id}", operationId: "get_coupon_code",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["coupon-codes:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/coupon-codes/{id}", operationId: "update_coupon_code",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["coupon-codes:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/coupon-codes/{id}", operationId: "delete_coupon_code",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["coupon-codes:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/coupon-code-bulk-create-jobs", operationId: "get_bulk_create_coupon_code_jobs",
            burst: 75, steady: 700, daily: nil,
            scopes: ["coupon-codes:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/coupon-code-bulk-create-jobs", operationId: "bulk_create_coupon_codes",
            burst: 75, steady: 700, daily: nil,
            scopes: ["coupon-codes:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/coupon-code-bulk-create-jobs/{job_id}",
            operationId: "get_bulk_create_coupon_codes_job",
            burst: 75, steady: 700, daily: nil,
            scopes: ["coupon-codes:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/coupon-codes/{id}/coupon", operationId: "get_coupon_for_coupon_code",
            burst: 75, steady: 700, daily: nil,
            scopes: ["coupons:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/coupon-codes/{id}/relationships/coupon",
            operationId: "get_coupon_id_for_coupon_code",
            burst: 75, steady: 700, daily: nil,
            scopes: ["coupons:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/coupons/{id}/coupon-codes", operationId: "get_coupon_codes_for_coupon",
            burst: 75, steady: 700, daily: nil,
            scopes: ["coupon-codes:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/coupons/{id}/relationships/coupon-codes",
            operationId: "get_coupon_code_ids_for_coupon",
            burst: 75, steady: 700, daily: nil,
            scopes: ["coupon-codes:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/data-sources", operationId: "get_data_sources",
            burst: 3, steady: 60, daily: nil,
            scopes: ["custom-objects:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/data-sources", operationId: "create_data_source",
            burst: 3, steady: 60, daily: nil,
            scopes: ["custom-objects:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/data-sources/{id}", operationId: "get_data_source",
            burst: 3, steady: 60, daily: nil,
            scopes: ["custom-objects:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/data-sources/{id}", operationId: "delete_data_source",
            burst: 3, steady: 60, daily: nil,
            scopes: ["custom-objects:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/data-source-record-bulk-create-jobs",
            operationId: "bulk_create_data_source_records",
            burst: 3, steady: 15, daily: nil,
            scopes: ["custom-objects:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/data-privacy-deletion-jobs", operationId: "request_profile_deletion",
            burst: 3, steady: 60, daily: nil,
            scopes: ["data-privacy:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/events", operationId: "get_events",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["events:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/events", operationId: "create_event",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["events:write"],
            requestSchema:
                #"{"properties":{"data":{"properties":{"attributes":{"properties":{"metric":{"properties":{"data":{"properties":{"attributes":{"properties":{"name":{"type":"string"},"service":{"nullable":true,"type":"string"}},"required":["name"],"type":"object"},"type":{"enum":["metric"],"type":"string"}},"required":["type","attributes"],"type":"object"}},"required":["data"],"type":"object"},"profile":{"properties":{"data":{"properties":{"attributes":{"properties":{"_kx":{"nullable":true,"type":"string"},"anonymous_id":{"nullable":true,"type":"string"},"email":{"nullable":true,"type":"string"},"external_id":{"nullable":true,"type":"string"},"first_name":{"nullable":true,"type":"string"},"image":{"nullable":true,"type":"string"},"last_name":{"nullable":true,"type":"string"},"locale":{"nullable":true,"type":"string"},"location":{"properties":{"address1":{"nullable":true,"type":"string"},"address2":{"nullable":true,"type":"string"},"city":{"nullable":true,"type":"string"},"country":{"nullable":true,"type":"string"},"ip":{"nullable":true,"type":"string"},"latitude":{"nullable":true,"oneOf":[{"type":"string"},{"type":"number"}]},"longitude":{"nullable":true,"oneOf":[{"type":"string"},{"type":"number"}]},"region":{"nullable":true,"type":"string"},"timezone":{"nullable":true,"type":"string"},"zip":{"nullable":true,"type":"string"}},"type":"object"},"meta":{"properties":{"patch_properties":{"properties":{"append":{"nullable":true,"type":"object"},"unappend":{"nullable":true,"type":"object"},"unset":{"nullable":true,"oneOf":[{"type":"string"},{"items":{"type":"string"},"type":"array"}]}},"type":"object"}},"type":"object"},"organization":{"nullable":true,"type":"string"},"phone_number":{"nullable":true,"type":"string"},"properties":{"nullable":true,"type":"object"},"title":{"nullable":true,"type":"string"}},"type":"object"},"id":{"nullable":true,"type":"string"},"type":{"enum":["profile"],"type":"string"}},"required":["type","attributes"],"type":"object"}},"required":["data"],"type":"object"},"properties":{"type":"object"},"time":{"format":"date-time","nullable":true,"type":"string"},"unique_id":{"nullable":true,"type":"string"},"value":{"nullable":true,"type":"number"},"value_currency":{"nullable":true,"type":"string"}},"required":["properties","metric","profile"],"type":"object"},"type":{"enum":["event"],"type":"string"}},"required":["type","attributes"],"type":"object"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "GET", path: "/api/events/{id}", operationId: "get_event",
            burst: 10, steady: 150, daily: nil,
            scopes: ["events:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/event-bulk-create-jobs", operationId: "bulk_create_events",
            burst: 10, steady: 150, daily: nil,
            scopes: ["events:write"],
            requestSchema:
                #"{"properties":{"data":{"properties":{"attributes":{"properties":{"events-bulk-create":{"properties":{"data":{"items":{"properties":{"attributes":{"properties":{"events":{"properties":{"data":{"items":{"properties":{"attributes":{"properties":{"metric":{"properties":{"data":{"properties":{"attributes":{"properties":{"name":{"type":"string"},"service":{"nullable":true,"type":"string"}},"required":["name"],"type":"object"},"type":{"enum":["metric"],"type":"string"}},"required":["type","attributes"],"type":"object"}},"required":["data"],"type":"object"},"properties":{"type":"object"},"time":{"format":"date-time","nullable":true,"type":"string"},"unique_id":{"nullable":true,"type":"string"},"value":{"nullable":true,"type":"number"},"value_currency":{"nullable":true,"type":"string"}},"required":["properties","metric"],"type":"object"},"type":{"enum":["event"],"type":"string"}},"required":["type","attributes"],"type":"object"},"type":"array"}},"required":["data"],"type":"object"},"profile":{"properties":{"data":{"properties":{"attributes":{"properties":{"_kx":{"nullable":true,"type":"string"},"anonymous_id":{"nullable":true,"type":"string"},"email":{"nullable":true,"type":"string"},"external_id":{"nullable":true,"type":"string"},"first_name":{"nullable":true,"type":"string"},"image":{"nullable":true,"type":"string"},"last_name":{"nullable":true,"type":"string"},"locale":{"nullable":true,"type":"string"},"location":{"properties":{"address1":{"nullable":true,"type":"string"},"address2":{"nullable":true,"type":"string"},"city":{"nullable":true,"type":"string"},"country":{"nullable":true,"type":"string"},"ip":{"nullable":true,"type":"string"},"latitude":{"nullable":true,"oneOf":[{"type":"string"},{"type":"number"}]},"longitude":{"nullable":true,"oneOf":[{"type":"string"},{"type":"number"}]},"region":{"nullable":true,"type":"string"},"timezone":{"nullable":true,"type":"string"},"zip":{"nullable":true,"type":"string"}},"type":"object"},"organization":{"nullable":true,"type":"string"},"phone_number":{"nullable":true,"type":"string"},"properties":{"nullable":true,"type":"object"},"title":{"nullable":true,"type":"string"}},"type":"object"},"id":{"nullable":true,"type":"string"},"meta":{"properties":{"patch_properties":{"properties":{"append":{"nullable":true,"type":"object"},"unappend":{"nullable":true,"type":"object"},"unset":{"nullable":true,"oneOf":[{"type":"string"},{"items":{"type":"string"},"type":"array"}]}},"type":"object"}},"type":"object"},"type":{"enum":["profile"],"type":"string"}},"required":["type","attributes"],"type":"object"}},"required":["data"],"type":"object"}},"required":["profile","events"],"type":"object"},"type":{"enum":["event-bulk-create"],"type":"string"}},"required":["type","attributes"],"type":"object"},"type":"array"}},"required":["data"],"type":"object"}},"required":["events-bulk-create"],"type":"object"},"type":{"enum":["event-bulk-create-job"],"type":"string"}},"required":["type","attributes"],"type":"object"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "GET", path: "/api/events/{id}/metric", operationId: "get_metric_for_event",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["events:read", "metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/events/{id}/relationships/metric", operationId: "get_metric_id_for_event",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["events:read", "metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/events/{id}/profile", operationId: "get_profile_for_event",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["events:read", "profiles:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/events/{id}/relationships/profile", operationId: "get_profile_id_for_event",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["events:read", "profiles:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flows", operationId: "get_flows",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/flows", operationId: "create_flow",
            burst: 1, steady: 15, daily: 100,
            scopes: ["flows:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flows/{id}", operationId: "get_flow",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/flows/{id}", operationId: "update_flow",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:write"],
            requestSchema:
                #"{"properties":{"data":{"properties":{"attributes":{"properties":{"status":{"type":"string"}},"required":["status"],"type":"object"},"id":{"type":"string"},"type":{"enum":["flow"],"type":"string"}},"required":["type","id","attributes"],"type":"object"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "DELETE", path: "/api/flows/{id}", operationId: "delete_flow",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flow-actions/{id}", operationId: "get_flow_action",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/flow-actions/{id}", operationId: "update_flow_action",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flow-messages/{id}", operationId: "get_flow_message",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flows/{id}/flow-actions", operationId: "get_actions_for_flow",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flows/{id}/relationships/flow-actions", operationId: "get_action_ids_for_flow",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flows/{id}/tags", operationId: "get_tags_for_flow",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read", "tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flows/{id}/relationships/tags", operationId: "get_tag_ids_for_flow",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read", "tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flow-actions/{id}/flow", operationId: "get_flow_for_flow_action",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flow-actions/{id}/relationships/flow",
            operationId: "get_flow_id_for_flow_action",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flow-actions/{id}/flow-messages", operationId: "get_flow_action_messages",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flow-actions/{id}/relationships/flow-messages",
            operationId: "get_message_ids_for_flow_action",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flow-messages/{id}/flow-action", operationId: "get_action_for_flow_message",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flow-messages/{id}/relationships/flow-action",
            operationId: "get_action_id_for_flow_message",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flow-messages/{id}/template", operationId: "get_template_for_flow_message",
            burst: 3, steady: 60, daily: nil,
            scopes: ["templates:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/flow-messages/{id}/relationships/template",
            operationId: "get_template_id_for_flow_message",
            burst: 3, steady: 60, daily: nil,
            scopes: ["templates:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/forms", operationId: "get_forms",
            burst: 3, steady: 60, daily: nil,
            scopes: ["forms:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/forms", operationId: "create_form",
            burst: 3, steady: 60, daily: nil,
            scopes: ["forms:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/forms/{id}", operationId: "get_form",
            burst: 3, steady: 60, daily: nil,
            scopes: ["forms:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/forms/{id}", operationId: "delete_form",
            burst: 3, steady: 60, daily: nil,
            scopes: ["forms:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/form-versions/{id}", operationId: "get_form_version",
            burst: 3, steady: 60, daily: nil,
            scopes: ["forms:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/forms/{id}/form-versions", operationId: "get_versions_for_form",
            burst: 3, steady: 60, daily: nil,
            scopes: ["forms:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/forms/{id}/relationships/form-versions", operationId: "get_version_ids_for_form",
            burst: 3, steady: 60, daily: nil,
            scopes: ["forms:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/form-versions/{id}/form", operationId: "get_form_for_form_version",
            burst: 3, steady: 60, daily: nil,
            scopes: ["forms:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/form-versions/{id}/relationships/form",
            operationId: "get_form_id_for_form_version",
            burst: 3, steady: 60, daily: nil,
            scopes: ["forms:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/images", operationId: "get_images",
            burst: 10, steady: 150, daily: nil,
            scopes: ["images:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/images", operationId: "upload_image_from_url",
            burst: 3, steady: 100, daily: 100,
            scopes: ["images:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/images/{id}", operationId: "get_image",
            burst: 10, steady: 150, daily: nil,
            scopes: ["images:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/images/{id}", operationId: "update_image",
            burst: 10, steady: 150, daily: nil,
            scopes: ["images:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/image-upload", operationId: "upload_image_from_file",
            burst: 3, steady: 100, daily: 100,
            scopes: ["images:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/lists", operationId: "get_lists",
            burst: 75, steady: 700, daily: nil,
            scopes: ["lists:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/lists", operationId: "create_list",
            burst: 10, steady: 150, daily: 150,
            scopes: ["lists:write"],
            requestSchema:
                #"{"properties":{"data":{"properties":{"attributes":{"properties":{"name":{"type":"string"},"opt_in_process":{"enum":["double_opt_in","single_opt_in"],"nullable":true,"type":"string"}},"required":["name"],"type":"object"},"type":{"enum":["list"],"type":"string"}},"required":["type","attributes"],"type":"object"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "GET", path: "/api/lists/{id}", operationId: "get_list",
            burst: 75, steady: 700, daily: nil,
            scopes: ["lists:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/lists/{id}", operationId: "update_list",
            burst: 10, steady: 150, daily: nil,
            scopes: ["lists:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/lists/{id}", operationId: "delete_list",
            burst: 10, steady: 150, daily: nil,
            scopes: ["lists:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/lists/{id}/tags", operationId: "get_tags_for_list",
            burst: 3, steady: 60, daily: nil,
            scopes: ["lists:read", "tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/lists/{id}/relationships/tags", operationId: "get_tag_ids_for_list",
            burst: 3, steady: 60, daily: nil,
            scopes: ["lists:read", "tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/lists/{id}/profiles", operationId: "get_profiles_for_list",
            burst: 75, steady: 700, daily: nil,
            scopes: ["lists:read", "profiles:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/lists/{id}/relationships/profiles", operationId: "get_profile_ids_for_list",
            burst: 75, steady: 700, daily: nil,
            scopes: ["lists:read", "profiles:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/lists/{id}/relationships/profiles", operationId: "add_profiles_to_list",
            burst: 10, steady: 150, daily: nil,
            scopes: ["lists:write", "profiles:write"],
            requestSchema:
                #"{"properties":{"data":{"items":{"properties":{"id":{"type":"string"},"type":{"enum":["profile"],"type":"string"}},"required":["type","id"],"type":"object"},"type":"array"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "DELETE", path: "/api/lists/{id}/relationships/profiles", operationId: "remove_profiles_from_list",
            burst: 10, steady: 150, daily: nil,
            scopes: ["lists:write", "profiles:write"],
            requestSchema:
                #"{"properties":{"data":{"items":{"properties":{"id":{"type":"string"},"type":{"enum":["profile"],"type":"string"}},"required":["type","id"],"type":"object"},"type":"array"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "GET", path: "/api/lists/{id}/flow-triggers", operationId: "get_flows_triggered_by_list",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read", "lists:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/lists/{id}/relationships/flow-triggers",
            operationId: "get_ids_for_flows_triggered_by_list",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read", "lists:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/metrics", operationId: "get_metrics",
            burst: 10, steady: 150, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/metrics/{id}", operationId: "get_metric",
            burst: 10, steady: 150, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/metric-properties/{id}", operationId: "get_metric_property",
            burst: 1, steady: 15, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/custom-metrics", operationId: "get_custom_metrics",
            burst: 3, steady: 60, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/custom-metrics", operationId: "create_custom_metric",
            burst: 1, steady: 15, daily: 15,
            scopes: ["metrics:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/custom-metrics/{id}", operationId: "get_custom_metric",
            burst: 3, steady: 60, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/custom-metrics/{id}", operationId: "update_custom_metric",
            burst: 1, steady: 15, daily: 15,
            scopes: ["metrics:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/custom-metrics/{id}", operationId: "delete_custom_metric",
            burst: 3, steady: 60, daily: nil,
            scopes: ["metrics:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/mapped-metrics", operationId: "get_mapped_metrics",
            burst: 3, steady: 60, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/mapped-metrics/{id}", operationId: "get_mapped_metric",
            burst: 3, steady: 60, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/mapped-metrics/{id}", operationId: "update_mapped_metric",
            burst: 1, steady: 15, daily: 30,
            scopes: ["metrics:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/metric-aggregates", operationId: "query_metric_aggregates",
            burst: 3, steady: 60, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/metrics/{id}/flow-triggers", operationId: "get_flows_triggered_by_metric",
            burst: 10, steady: 150, daily: nil,
            scopes: ["flows:read", "metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/metrics/{id}/relationships/flow-triggers",
            operationId: "get_ids_for_flows_triggered_by_metric",
            burst: 10, steady: 150, daily: nil,
            scopes: ["flows:read", "metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/metrics/{id}/metric-properties", operationId: "get_properties_for_metric",
            burst: 1, steady: 15, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/metrics/{id}/relationships/metric-properties",
            operationId: "get_property_ids_for_metric",
            burst: 1, steady: 15, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/metric-properties/{id}/metric", operationId: "get_metric_for_metric_property",
            burst: 1, steady: 15, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/metric-properties/{id}/relationships/metric",
            operationId: "get_metric_id_for_metric_property",
            burst: 1, steady: 15, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/custom-metrics/{id}/metrics", operationId: "get_metrics_for_custom_metric",
            burst: 3, steady: 60, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/custom-metrics/{id}/relationships/metrics",
            operationId: "get_metric_ids_for_custom_metric",
            burst: 3, steady: 60, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/mapped-metrics/{id}/metric", operationId: "get_metric_for_mapped_metric",
            burst: 3, steady: 60, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/mapped-metrics/{id}/relationships/metric",
            operationId: "get_metric_id_for_mapped_metric",
            burst: 3, steady: 60, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/mapped-metrics/{id}/custom-metric",
            operationId: "get_custom_metric_for_mapped_metric",
            burst: 3, steady: 60, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/mapped-metrics/{id}/relationships/custom-metric",
            operationId: "get_custom_metric_id_for_mapped_metric",
            burst: 3, steady: 60, daily: nil,
            scopes: ["metrics:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/profiles", operationId: "get_profiles",
            burst: 75, steady: 700, daily: nil,
            scopes: ["profiles:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/profiles", operationId: "create_profile",
            burst: 75, steady: 700, daily: nil,
            scopes: ["profiles:write"],
            requestSchema:
                #"{"properties":{"data":{"properties":{"attributes":{"properties":{"email":{"nullable":true,"type":"string"},"external_id":{"nullable":true,"type":"string"},"first_name":{"nullable":true,"type":"string"},"image":{"nullable":true,"type":"string"},"last_name":{"nullable":true,"type":"string"},"locale":{"nullable":true,"type":"string"},"location":{"properties":{"address1":{"nullable":true,"type":"string"},"address2":{"nullable":true,"type":"string"},"city":{"nullable":true,"type":"string"},"country":{"nullable":true,"type":"string"},"ip":{"nullable":true,"type":"string"},"latitude":{"nullable":true,"oneOf":[{"type":"string"},{"type":"number"}]},"longitude":{"nullable":true,"oneOf":[{"type":"string"},{"type":"number"}]},"region":{"nullable":true,"type":"string"},"timezone":{"nullable":true,"type":"string"},"zip":{"nullable":true,"type":"string"}},"type":"object"},"organization":{"nullable":true,"type":"string"},"phone_number":{"nullable":true,"type":"string"},"properties":{"nullable":true,"type":"object"},"title":{"nullable":true,"type":"string"}},"type":"object"},"type":{"enum":["profile"],"type":"string"}},"required":["type","attributes"],"type":"object"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "GET", path: "/api/profiles/{id}", operationId: "get_profile",
            burst: 75, steady: 700, daily: nil,
            scopes: ["profiles:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/profiles/{id}", operationId: "update_profile",
            burst: 75, steady: 700, daily: nil,
            scopes: ["profiles:write"],
            requestSchema:
                #"{"properties":{"data":{"properties":{"attributes":{"properties":{"email":{"nullable":true,"type":"string"},"external_id":{"nullable":true,"type":"string"},"first_name":{"nullable":true,"type":"string"},"image":{"nullable":true,"type":"string"},"last_name":{"nullable":true,"type":"string"},"locale":{"nullable":true,"type":"string"},"location":{"properties":{"address1":{"nullable":true,"type":"string"},"address2":{"nullable":true,"type":"string"},"city":{"nullable":true,"type":"string"},"country":{"nullable":true,"type":"string"},"ip":{"nullable":true,"type":"string"},"latitude":{"nullable":true,"oneOf":[{"type":"string"},{"type":"number"}]},"longitude":{"nullable":true,"oneOf":[{"type":"string"},{"type":"number"}]},"region":{"nullable":true,"type":"string"},"timezone":{"nullable":true,"type":"string"},"zip":{"nullable":true,"type":"string"}},"type":"object"},"organization":{"nullable":true,"type":"string"},"phone_number":{"nullable":true,"type":"string"},"properties":{"nullable":true,"type":"object"},"title":{"nullable":true,"type":"string"}},"type":"object"},"id":{"type":"string"},"meta":{"properties":{"patch_properties":{"properties":{"append":{"nullable":true,"type":"object"},"unappend":{"nullable":true,"type":"object"},"unset":{"nullable":true,"oneOf":[{"type":"string"},{"items":{"type":"string"},"type":"array"}]}},"type":"object"}},"type":"object"},"type":{"enum":["profile"],"type":"string"}},"required":["type","id","attributes"],"type":"object"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "GET", path: "/api/profile-bulk-import-jobs", operationId: "get_bulk_import_profiles_jobs",
            burst: 10, steady: 150, daily: nil,
            scopes: ["lists:read", "profiles:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/profile-bulk-import-jobs", operationId: "bulk_import_profiles",
            burst: 10, steady: 150, daily: nil,
            scopes: ["lists:write", "profiles:write"],
            requestSchema:
                #"{"properties":{"data":{"properties":{"attributes":{"properties":{"profiles":{"properties":{"data":{"items":{"properties":{"attributes":{"properties":{"_kx":{"nullable":true,"type":"string"},"email":{"nullable":true,"type":"string"},"external_id":{"nullable":true,"type":"string"},"first_name":{"nullable":true,"type":"string"},"image":{"nullable":true,"type":"string"},"last_name":{"nullable":true,"type":"string"},"locale":{"nullable":true,"type":"string"},"location":{"properties":{"address1":{"nullable":true,"type":"string"},"address2":{"nullable":true,"type":"string"},"city":{"nullable":true,"type":"string"},"country":{"nullable":true,"type":"string"},"ip":{"nullable":true,"type":"string"},"latitude":{"nullable":true,"oneOf":[{"type":"string"},{"type":"number"}]},"longitude":{"nullable":true,"oneOf":[{"type":"string"},{"type":"number"}]},"region":{"nullable":true,"type":"string"},"timezone":{"nullable":true,"type":"string"},"zip":{"nullable":true,"type":"string"}},"type":"object"},"organization":{"nullable":true,"type":"string"},"phone_number":{"nullable":true,"type":"string"},"properties":{"nullable":true,"type":"object"},"title":{"nullable":true,"type":"string"}},"type":"object"},"id":{"nullable":true,"type":"string"},"meta":{"properties":{"patch_properties":{"properties":{"append":{"nullable":true,"type":"object"},"unappend":{"nullable":true,"type":"object"},"unset":{"nullable":true,"oneOf":[{"type":"string"},{"items":{"type":"string"},"type":"array"}]}},"type":"object"}},"type":"object"},"type":{"enum":["profile"],"type":"string"}},"required":["type","attributes"],"type":"object"},"type":"array"}},"required":["data"],"type":"object"}},"required":["profiles"],"type":"object"},"relationships":{"properties":{"lists":{"properties":{"data":{"items":{"properties":{"id":{"type":"string"},"type":{"enum":["list"],"type":"string"}},"required":["type","id"],"type":"object"},"type":"array"}},"type":"object"}},"type":"object"},"type":{"enum":["profile-bulk-import-job"],"type":"string"}},"required":["type","attributes"],"type":"object"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "GET", path: "/api/profile-bulk-import-jobs/{job_id}", operationId: "get_bulk_import_profiles_job",
            burst: 10, steady: 150, daily: nil,
            scopes: ["lists:read", "profiles:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/profile-suppression-bulk-create-jobs",
            operationId: "get_bulk_suppress_profiles_jobs",
            burst: 75, steady: 700, daily: nil,
            scopes: ["subscriptions:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/profile-suppression-bulk-create-jobs", operationId: "bulk_suppress_profiles",
            burst: 75, steady: 700, daily: nil,
            scopes: ["profiles:write", "subscriptions:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/profile-suppression-bulk-create-jobs/{job_id}",
            operationId: "get_bulk_suppress_profiles_job",
            burst: 75, steady: 700, daily: nil,
            scopes: ["subscriptions:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/profile-suppression-bulk-delete-jobs",
            operationId: "get_bulk_unsuppress_profiles_jobs",
            burst: 75, steady: 700, daily: nil,
            scopes: ["subscriptions:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/profile-suppression-bulk-delete-jobs", operationId: "bulk_unsuppress_profiles",
            burst: 75, steady: 700, daily: nil,
            scopes: ["subscriptions:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/profile-suppression-bulk-delete-jobs/{job_id}",
            operationId: "get_bulk_unsuppress_profiles_job",
            burst: 75, steady: 700, daily: nil,
            scopes: ["subscriptions:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/push-tokens", operationId: "get_push_tokens",
            burst: 10, steady: 150, daily: nil,
            scopes: ["profiles:read", "push-tokens:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/push-tokens", operationId: "create_push_token",
            burst: 75, steady: 700, daily: nil,
            scopes: ["profiles:write", "push-tokens:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/push-tokens/{id}", operationId: "get_push_token",
            burst: 10, steady: 150, daily: nil,
            scopes: ["profiles:read", "push-tokens:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/push-tokens/{id}", operationId: "delete_push_token",
            burst: 3, steady: 60, daily: nil,
            scopes: ["push-tokens:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/profile-import", operationId: "create_or_update_profile",
            burst: 75, steady: 700, daily: nil,
            scopes: ["profiles:write"],
            requestSchema:
                #"{"properties":{"data":{"properties":{"attributes":{"properties":{"_kx":{"nullable":true,"type":"string"},"email":{"nullable":true,"type":"string"},"external_id":{"nullable":true,"type":"string"},"first_name":{"nullable":true,"type":"string"},"image":{"nullable":true,"type":"string"},"last_name":{"nullable":true,"type":"string"},"locale":{"nullable":true,"type":"string"},"location":{"properties":{"address1":{"nullable":true,"type":"string"},"address2":{"nullable":true,"type":"string"},"city":{"nullable":true,"type":"string"},"country":{"nullable":true,"type":"string"},"ip":{"nullable":true,"type":"string"},"latitude":{"nullable":true,"oneOf":[{"type":"string"},{"type":"number"}]},"longitude":{"nullable":true,"oneOf":[{"type":"string"},{"type":"number"}]},"region":{"nullable":true,"type":"string"},"timezone":{"nullable":true,"type":"string"},"zip":{"nullable":true,"type":"string"}},"type":"object"},"organization":{"nullable":true,"type":"string"},"phone_number":{"nullable":true,"type":"string"},"properties":{"nullable":true,"type":"object"},"title":{"nullable":true,"type":"string"}},"type":"object"},"id":{"nullable":true,"type":"string"},"meta":{"properties":{"patch_properties":{"properties":{"append":{"nullable":true,"type":"object"},"unappend":{"nullable":true,"type":"object"},"unset":{"nullable":true,"oneOf":[{"type":"string"},{"items":{"type":"string"},"type":"array"}]}},"type":"object"}},"type":"object"},"type":{"enum":["profile"],"type":"string"}},"required":["type","attributes"],"type":"object"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "POST", path: "/api/profile-merge", operationId: "merge_profiles",
            burst: 10, steady: 150, daily: nil,
            scopes: ["profiles:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/profile-subscription-bulk-create-jobs", operationId: "bulk_subscribe_profiles",
            burst: 75, steady: 700, daily: nil,
            scopes: ["lists:write", "profiles:write", "subscriptions:write"],
            requestSchema:
                #"{"properties":{"data":{"properties":{"attributes":{"properties":{"custom_source":{"nullable":true,"type":"string"},"historical_import":{"nullable":true,"type":"boolean"},"profiles":{"properties":{"data":{"items":{"properties":{"attributes":{"properties":{"age_gated_date_of_birth":{"nullable":true,"type":"string"},"email":{"nullable":true,"type":"string"},"phone_number":{"nullable":true,"type":"string"},"subscriptions":{"properties":{"email":{"properties":{"marketing":{"properties":{"consent":{"enum":["SUBSCRIBED"],"type":"string"},"consented_at":{"format":"date-time","nullable":true,"type":"string"}},"required":["consent"],"type":"object"}},"required":["marketing"],"type":"object"},"sms":{"properties":{"marketing":{"properties":{"consent":{"enum":["SUBSCRIBED"],"type":"string"},"consented_at":{"format":"date-time","nullable":true,"type":"string"}},"required":["consent"],"type":"object"},"transactional":{"properties":{"consent":{"enum":["SUBSCRIBED"],"type":"string"},"consented_at":{"format":"date-time","nullable":true,"type":"string"}},"required":["consent"],"type":"object"}},"type":"object"},"whatsapp":{"properties":{"marketing":{"properties":{"consent":{"enum":["SUBSCRIBED"],"type":"string"},"consented_at":{"format":"date-time","nullable":true,"type":"string"}},"required":["consent"],"type":"object"},"transactional":{"properties":{"consent":{"enum":["SUBSCRIBED"],"type":"string"},"consented_at":{"format":"date-time","nullable":true,"type":"string"}},"required":["consent"],"type":"object"}},"type":"object"}},"type":"object"}},"required":["subscriptions"],"type":"object"},"id":{"nullable":true,"type":"string"},"type":{"enum":["profile"],"type":"string"}},"required":["type","attributes"],"type":"object"},"type":"array"}},"required":["data"],"type":"object"}},"required":["profiles"],"type":"object"},"relationships":{"properties":{"list":{"properties":{"data":{"properties":{"id":{"type":"string"},"type":{"enum":["list"],"type":"string"}},"required":["type","id"],"type":"object"}},"type":"object"}},"type":"object"},"type":{"enum":["profile-subscription-bulk-create-job"],"type":"string"}},"required":["type","attributes"],"type":"object"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "POST", path: "/api/profile-subscription-bulk-delete-jobs",
            operationId: "bulk_unsubscribe_profiles",
            burst: 75, steady: 700, daily: nil,
            scopes: ["lists:write", "profiles:write", "subscriptions:write"],
            requestSchema:
                #"{"properties":{"data":{"properties":{"attributes":{"properties":{"profiles":{"properties":{"data":{"items":{"properties":{"attributes":{"properties":{"email":{"nullable":true,"type":"string"},"phone_number":{"nullable":true,"type":"string"},"subscriptions":{"properties":{"email":{"properties":{"marketing":{"properties":{"consent":{"enum":["UNSUBSCRIBED"],"type":"string"}},"required":["consent"],"type":"object"}},"required":["marketing"],"type":"object"},"sms":{"properties":{"marketing":{"properties":{"consent":{"enum":["UNSUBSCRIBED"],"type":"string"}},"required":["consent"],"type":"object"},"transactional":{"properties":{"consent":{"enum":["UNSUBSCRIBED"],"type":"string"}},"required":["consent"],"type":"object"}},"type":"object"},"whatsapp":{"properties":{"conversational":{"properties":{"consent":{"enum":["UNSUBSCRIBED"],"type":"string"}},"required":["consent"],"type":"object"},"marketing":{"properties":{"consent":{"enum":["UNSUBSCRIBED"],"type":"string"}},"required":["consent"],"type":"object"},"transactional":{"properties":{"consent":{"enum":["UNSUBSCRIBED"],"type":"string"}},"required":["consent"],"type":"object"}},"type":"object"}},"type":"object"}},"required":["subscriptions"],"type":"object"},"type":{"enum":["profile"],"type":"string"}},"required":["type","attributes"],"type":"object"},"type":"array"}},"required":["data"],"type":"object"}},"required":["profiles"],"type":"object"},"relationships":{"properties":{"list":{"properties":{"data":{"properties":{"id":{"type":"string"},"type":{"enum":["list"],"type":"string"}},"required":["type","id"],"type":"object"}},"type":"object"}},"type":"object"},"type":{"enum":["profile-subscription-bulk-delete-job"],"type":"string"}},"required":["type","attributes"],"type":"object"}},"required":["data"],"type":"object"}"#
        ),
        KlaviyoOperation(
            method: "GET", path: "/api/profiles/{id}/push-tokens", operationId: "get_push_tokens_for_profile",
            burst: 10, steady: 150, daily: nil,
            scopes: ["profiles:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/profiles/{id}/relationships/push-tokens",
            operationId: "get_push_token_ids_for_profile",
            burst: 10, steady: 150, daily: nil,
            scopes: ["profiles:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/profiles/{id}/lists", operationId: "get_lists_for_profile",
            burst: 3, steady: 60, daily: nil,
            scopes: ["lists:read", "profiles:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/profiles/{id}/relationships/lists", operationId: "get_list_ids_for_profile",
            burst: 3, steady: 60, daily: nil,
            scopes: ["lists:read", "profiles:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/profiles/{id}/segments", operationId: "get_segments_for_profile",
            burst: 3, steady: 60, daily: nil,
            scopes: ["profiles:read", "segments:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/profiles/{id}/relationships/segments",
            operationId: "get_segment_ids_for_profile",
            burst: 3, steady: 60, daily: nil,
            scopes: ["profiles:read", "segments:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/profile-bulk-import-jobs/{id}/lists",
            operationId: "get_list_for_bulk_import_profiles_job",
            burst: 10, steady: 150, daily: nil,
            scopes: ["lists:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/profile-bulk-import-jobs/{id}/relationships/lists",
            operationId: "get_list_ids_for_bulk_import_profiles_job",
            burst: 10, steady: 150, daily: nil,
            scopes: ["lists:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/profile-bulk-import-jobs/{id}/profiles",
            operationId: "get_profiles_for_bulk_import_profiles_job",
            burst: 10, steady: 150, daily: nil,
            scopes: ["profiles:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/profile-bulk-import-jobs/{id}/relationships/profiles",
            operationId: "get_profile_ids_for_bulk_import_profiles_job",
            burst: 10, steady: 150, daily: nil,
            scopes: ["profiles:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/profile-bulk-import-jobs/{id}/import-errors",
            operationId: "get_errors_for_bulk_import_profiles_job",
            burst: 10, steady: 150, daily: nil,
            scopes: ["profiles:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/push-tokens/{id}/profile", operationId: "get_profile_for_push_token",
            burst: 10, steady: 150, daily: nil,
            scopes: ["profiles:read", "push-tokens:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/push-tokens/{id}/relationships/profile",
            operationId: "get_profile_id_for_push_token",
            burst: 10, steady: 150, daily: nil,
            scopes: ["profiles:read", "push-tokens:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/campaign-values-reports", operationId: "query_campaign_values",
            burst: 1, steady: 2, daily: 225,
            scopes: ["campaigns:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/flow-values-reports", operationId: "query_flow_values",
            burst: 1, steady: 2, daily: 225,
            scopes: ["flows:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/flow-series-reports", operationId: "query_flow_series",
            burst: 1, steady: 2, daily: 225,
            scopes: ["flows:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/form-values-reports", operationId: "query_form_values",
            burst: 1, steady: 2, daily: 225,
            scopes: ["forms:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/form-series-reports", operationId: "query_form_series",
            burst: 1, steady: 2, daily: 225,
            scopes: ["forms:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/segment-values-reports", operationId: "query_segment_values",
            burst: 1, steady: 2, daily: 225,
            scopes: ["segments:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/segment-series-reports", operationId: "query_segment_series",
            burst: 1, steady: 2, daily: 225,
            scopes: ["segments:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/reviews", operationId: "get_reviews",
            burst: 10, steady: 150, daily: nil,
            scopes: ["reviews:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/reviews/{id}", operationId: "get_review",
            burst: 10, steady: 150, daily: nil,
            scopes: ["reviews:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/reviews/{id}", operationId: "update_review",
            burst: 10, steady: 150, daily: nil,
            scopes: ["reviews:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/segments", operationId: "get_segments",
            burst: 75, steady: 700, daily: nil,
            scopes: ["segments:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/segments", operationId: "create_segment",
            burst: 1, steady: 15, daily: 100,
            scopes: ["segments:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/segments/{id}", operationId: "get_segment",
            burst: 75, steady: 700, daily: nil,
            scopes: ["segments:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/segments/{id}", operationId: "update_segment",
            burst: 1, steady: 15, daily: 100,
            scopes: ["segments:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/segments/{id}", operationId: "delete_segment",
            burst: 3, steady: 60, daily: nil,
            scopes: ["segments:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/segments/{id}/tags", operationId: "get_tags_for_segment",
            burst: 3, steady: 60, daily: nil,
            scopes: ["segments:read", "tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/segments/{id}/relationships/tags", operationId: "get_tag_ids_for_segment",
            burst: 3, steady: 60, daily: nil,
            scopes: ["segments:read", "tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/segments/{id}/profiles", operationId: "get_profiles_for_segment",
            burst: 75, steady: 700, daily: nil,
            scopes: ["profiles:read", "segments:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/segments/{id}/relationships/profiles",
            operationId: "get_profile_ids_for_segment",
            burst: 75, steady: 700, daily: nil,
            scopes: ["profiles:read", "segments:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/segments/{id}/flow-triggers", operationId: "get_flows_triggered_by_segment",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read", "segments:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/segments/{id}/relationships/flow-triggers",
            operationId: "get_ids_for_flows_triggered_by_segment",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read", "segments:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/tags", operationId: "get_tags",
            burst: 3, steady: 60, daily: nil,
            scopes: ["tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/tags", operationId: "create_tag",
            burst: 3, steady: 60, daily: nil,
            scopes: ["tags:read", "tags:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/tags/{id}", operationId: "get_tag",
            burst: 3, steady: 60, daily: nil,
            scopes: ["tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/tags/{id}", operationId: "update_tag",
            burst: 3, steady: 60, daily: nil,
            scopes: ["tags:read", "tags:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/tags/{id}", operationId: "delete_tag",
            burst: 3, steady: 60, daily: nil,
            scopes: ["tags:read", "tags:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/tag-groups", operationId: "get_tag_groups",
            burst: 3, steady: 60, daily: nil,
            scopes: ["tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/tag-groups", operationId: "create_tag_group",
            burst: 3, steady: 60, daily: nil,
            scopes: ["tags:read", "tags:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/tag-groups/{id}", operationId: "get_tag_group",
            burst: 3, steady: 60, daily: nil,
            scopes: ["tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/tag-groups/{id}", operationId: "update_tag_group",
            burst: 3, steady: 60, daily: nil,
            scopes: ["tags:read", "tags:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/tag-groups/{id}", operationId: "delete_tag_group",
            burst: 3, steady: 60, daily: nil,
            scopes: ["tags:read", "tags:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/tags/{id}/relationships/flows", operationId: "get_flow_ids_for_tag",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:read", "tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/tags/{id}/relationships/flows", operationId: "tag_flows",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:write", "tags:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/tags/{id}/relationships/flows", operationId: "remove_tag_from_flows",
            burst: 3, steady: 60, daily: nil,
            scopes: ["flows:write", "tags:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/tags/{id}/relationships/campaigns", operationId: "get_campaign_ids_for_tag",
            burst: 3, steady: 60, daily: nil,
            scopes: ["campaigns:read", "tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/tags/{id}/relationships/campaigns", operationId: "tag_campaigns",
            burst: 3, steady: 60, daily: nil,
            scopes: ["campaigns:write", "tags:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/tags/{id}/relationships/campaigns", operationId: "remove_tag_from_campaigns",
            burst: 3, steady: 60, daily: nil,
            scopes: ["campaigns:write", "tags:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/tags/{id}/relationships/lists", operationId: "get_list_ids_for_tag",
            burst: 3, steady: 60, daily: nil,
            scopes: ["lists:read", "tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/tags/{id}/relationships/lists", operationId: "tag_lists",
            burst: 3, steady: 60, daily: nil,
            scopes: ["lists:write", "tags:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/tags/{id}/relationships/lists", operationId: "remove_tag_from_lists",
            burst: 3, steady: 60, daily: nil,
            scopes: ["lists:write", "tags:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/tags/{id}/relationships/segments", operationId: "get_segment_ids_for_tag",
            burst: 3, steady: 60, daily: nil,
            scopes: ["segments:read", "tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/tags/{id}/relationships/segments", operationId: "tag_segments",
            burst: 3, steady: 60, daily: nil,
            scopes: ["segments:write", "tags:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/tags/{id}/relationships/segments", operationId: "remove_tag_from_segments",
            burst: 3, steady: 60, daily: nil,
            scopes: ["segments:write", "tags:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/tags/{id}/tag-group", operationId: "get_tag_group_for_tag",
            burst: 3, steady: 60, daily: nil,
            scopes: ["tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/tags/{id}/relationships/tag-group", operationId: "get_tag_group_id_for_tag",
            burst: 3, steady: 60, daily: nil,
            scopes: ["tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/tag-groups/{id}/tags", operationId: "get_tags_for_tag_group",
            burst: 3, steady: 60, daily: nil,
            scopes: ["tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/tag-groups/{id}/relationships/tags", operationId: "get_tag_ids_for_tag_group",
            burst: 3, steady: 60, daily: nil,
            scopes: ["tags:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/templates", operationId: "get_templates",
            burst: 75, steady: 700, daily: nil,
            scopes: ["templates:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/templates", operationId: "create_template",
            burst: 75, steady: 700, daily: nil,
            scopes: ["templates:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/templates/{id}", operationId: "get_template",
            burst: 75, steady: 700, daily: nil,
            scopes: ["templates:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/templates/{id}", operationId: "update_template",
            burst: 75, steady: 700, daily: nil,
            scopes: ["templates:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/templates/{id}", operationId: "delete_template",
            burst: 75, steady: 700, daily: nil,
            scopes: ["templates:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/template-universal-content", operationId: "get_all_universal_content",
            burst: 75, steady: 700, daily: nil,
            scopes: ["templates:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/template-universal-content", operationId: "create_universal_content",
            burst: 75, steady: 700, daily: nil,
            scopes: ["templates:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/template-universal-content/{id}", operationId: "get_universal_content",
            burst: 75, steady: 700, daily: nil,
            scopes: ["templates:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/template-universal-content/{id}", operationId: "update_universal_content",
            burst: 75, steady: 700, daily: nil,
            scopes: ["templates:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/template-universal-content/{id}", operationId: "delete_universal_content",
            burst: 75, steady: 700, daily: nil,
            scopes: ["templates:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/template-render", operationId: "render_template",
            burst: 3, steady: 60, daily: nil,
            scopes: ["templates:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/template-clone", operationId: "clone_template",
            burst: 75, steady: 700, daily: nil,
            scopes: ["templates:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/tracking-settings", operationId: "get_tracking_settings",
            burst: 10, steady: 150, daily: nil,
            scopes: ["tracking-settings:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/tracking-settings/{id}", operationId: "get_tracking_setting",
            burst: 10, steady: 150, daily: nil,
            scopes: ["tracking-settings:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/tracking-settings/{id}", operationId: "update_tracking_setting",
            burst: 10, steady: 150, daily: nil,
            scopes: ["tracking-settings:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/web-feeds", operationId: "get_web_feeds",
            burst: 1, steady: 15, daily: nil,
            scopes: ["web-feeds:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/web-feeds", operationId: "create_web_feed",
            burst: 1, steady: 15, daily: nil,
            scopes: ["web-feeds:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/web-feeds/{id}", operationId: "get_web_feed",
            burst: 1, steady: 15, daily: nil,
            scopes: ["web-feeds:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/web-feeds/{id}", operationId: "update_web_feed",
            burst: 1, steady: 15, daily: nil,
            scopes: ["web-feeds:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/web-feeds/{id}", operationId: "delete_web_feed",
            burst: 1, steady: 15, daily: nil,
            scopes: ["web-feeds:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/webhooks", operationId: "get_webhooks",
            burst: 1, steady: 15, daily: nil,
            scopes: ["webhooks:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/api/webhooks", operationId: "create_webhook",
            burst: 1, steady: 15, daily: nil,
            scopes: ["webhooks:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/webhooks/{id}", operationId: "get_webhook",
            burst: 1, steady: 15, daily: nil,
            scopes: ["webhooks:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "PATCH", path: "/api/webhooks/{id}", operationId: "update_webhook",
            burst: 1, steady: 15, daily: nil,
            scopes: ["webhooks:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "DELETE", path: "/api/webhooks/{id}", operationId: "delete_webhook",
            burst: 1, steady: 15, daily: nil,
            scopes: ["webhooks:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/webhook-topics", operationId: "get_webhook_topics",
            burst: 1, steady: 15, daily: nil,
            scopes: ["webhooks:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/api/webhook-topics/{id}", operationId: "get_webhook_topic",
            burst: 1, steady: 15, daily: nil,
            scopes: ["webhooks:read"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/client/review-values-reports", operationId: "get_client_review_values_reports",
            burst: 10, steady: 150, daily: nil,
            scopes: [],
            requestSchema: nil),
        KlaviyoOperation(
            method: "GET", path: "/client/reviews", operationId: "get_client_reviews",
            burst: 10, steady: 150, daily: nil,
            scopes: [],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/client/reviews", operationId: "create_client_review",
            burst: 10, steady: 150, daily: nil,
            scopes: [],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/client/subscriptions", operationId: "create_client_subscription",
            burst: 100, steady: 700, daily: nil,
            scopes: ["subscriptions:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/client/push-tokens", operationId: "create_client_push_token",
            burst: 150, steady: 1400, daily: nil,
            scopes: [],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/client/push-token-unregister", operationId: "unregister_client_push_token",
            burst: 3, steady: 60, daily: nil,
            scopes: [],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/client/events", operationId: "create_client_event",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["events:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/client/profiles", operationId: "create_client_profile",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["profiles:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/client/event-bulk-create", operationId: "bulk_create_client_events",
            burst: 10, steady: 150, daily: nil,
            scopes: ["events:write"],
            requestSchema: nil),
        KlaviyoOperation(
            method: "POST", path: "/client/back-in-stock-subscriptions",
            operationId: "create_client_back_in_stock_subscription",
            burst: 350, steady: 3500, daily: nil,
            scopes: ["catalogs:write", "profiles:write"],
            requestSchema: nil),
    ]
}
