-- Rule: locale, when given, is a two-letter country code in capitals (ISO 3166-1 alpha-2 shape),
-- e.g. "RU", "US". A locale like "ru_RU" or "日本" is rejected with reason "rule:locale_code".
return {
  name = "locale_code",
  check = function(record)
    local locale = record.locale
    if type(locale) ~= "string" then return true end
    if locale:match("^%u%u$") then return true end
    return false, "locale is not a two-letter code such as RU or US"
  end,
}
