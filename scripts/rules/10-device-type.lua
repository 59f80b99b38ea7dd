-- Rule: device_type, when given, is one of the platforms the app ships on.
-- A login from any other device_type is rejected with reason "rule:known_device_type".
local KNOWN = { android = true, ios = true, web = true }

return {
  name = "known_device_type",
  check = function(record)
    local t = record.device_type
    if type(t) ~= "string" then return true end   -- missing or null: the built-in rules decide
    if KNOWN[t] then return true end
    return false, "device_type is not one of android, ios, web"
  end,
}
