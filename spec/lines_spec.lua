-- spec/lines_spec.lua: etlua.lines, the reader that cuts an --input file into lines (the file
-- source's behaviour over it, chunk edges included, is spec/source_spec.lua's): what a line is,
-- a reader from where the file stands, and the misuse that raises.
require "spec.helper"
local lines = require "etlua.lines"

local function file_of(content)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb")); f:write(content); f:close()
  return path, assert(io.open(path, "rb"))
end

local function all(r)
  local got = {}
  for l in function() return lines.next(r) end do got[#got + 1] = l end
  return got
end

-- The content's digest as source.lua defined it in Lua before etlua.lines: 1 MiB reads, each
-- hashed after the digest so far, then the digest and ":" and the byte count.
local function lua_digest(f)
  local sha = require("etlua.mask").sha256_hex
  local digest, n = "", 0
  while true do
    local chunk = f:read(1048576)
    if not chunk then break end
    digest, n = sha(digest .. chunk), n + #chunk
  end
  return sha(digest .. ":" .. n)
end

describe("etlua.lines", function()
  it("digest: the content's digest as it always was, at every size around its 1 MiB steps", function()
    for _, size in ipairs({0, 1, 1048575, 1048576, 1048577, 2 * 1048576, 2621440}) do
      local path, f = file_of(("abcdefghij\n"):rep(size // 11 + 1):sub(1, size))
      local want = lua_digest(f)
      f:seek("set", 0)
      assert.are.equal(want, lines.digest(f), "size " .. size)
      f:close(); os.remove(path)
    end
    local path, f = file_of("0123456789")
    f:seek("set", 4)
    assert.are.equal(require("etlua.mask").sha256_hex(require("etlua.mask").sha256_hex("456789") .. ":6"),
                     lines.digest(f))
    f:close(); os.remove(path)
  end)

  it("digest: a read error is nil, message (a directory)", function()
    local f = assert(io.open("/", "rb"))
    local d, err = lines.digest(f)
    assert.is_nil(d)
    assert.are.equal("Is a directory", err)
    f:close()
  end)

  it("gives each line without \\n or \\r\\n, empty ones too, the last without a line end", function()
    local path, f = file_of("a\r\n\nb\r\r\nc\rd\n\r\nlast\r")
    local r = lines.reader(f)
    assert.are.same({"a", "", "b\r", "c\rd", "", "last"}, all(r))
    assert.is_nil(r:next()) -- and stays at the end
    r:close(); f:close(); os.remove(path)
  end)

  it("gives nothing for an empty file, and no empty last line after a final \\n", function()
    local path, f = file_of("")
    assert.are.same({}, all(lines.reader(f)))
    f:close(); os.remove(path)
    path, f = file_of("x\n")
    assert.are.same({"x"}, all(lines.reader(f)))
    f:close(); os.remove(path)
  end)

  it("keeps NUL bytes and lines far longer than its buffer", function()
    local long = ("0123456789"):rep(30000)
    local path, f = file_of("a\0b\n" .. long .. "\r\n" .. long)
    assert.are.same({"a\0b", long, long}, all(lines.reader(f)))
    f:close(); os.remove(path)
  end)

  it("reads from where the file stands", function()
    local path, f = file_of("skip\nthen\n")
    f:seek("set", 5)
    assert.are.same({"then"}, all(lines.reader(f)))
    f:close(); os.remove(path)
  end)

  it("raises when used closed, or on a closed file; closing twice is safe", function()
    local path, f = file_of("x\n")
    local r = lines.reader(f)
    r:close(); r:close()
    assert.has_error(function() r:next() end, "attempt to use a closed lines reader")
    local r2 = lines.reader(f)
    f:close()
    assert.has_error(function() r2:next() end, "attempt to read lines of a closed file")
    assert.has_error(function() lines.reader(f) end)
    assert.has_error(function() lines.reader("not a file") end)
    os.remove(path)
  end)

  it("message: the next line not empty, its number, id = prefix .. number; at the end nil, the last number", function()
    local path, f = file_of("a\n\n\r\nb\r\n\n")
    local r = lines.reader(f)
    assert.are.same({"a", 1, "p:1"}, {lines.message(r, "p:", 0)})
    assert.are.same({"b", 4, "input:x:4"}, {lines.message(r, "input:x:", 1)}) -- a \r\n line is empty too
    assert.are.same({n = 2, nil, 5}, table.pack(lines.message(r, "p:", 4)))  -- the last line read: 5
    assert.are.same({n = 2, nil, 5}, table.pack(lines.message(r, "p:", 5)))
    f:close(); os.remove(path)
    path, f = file_of("z")
    r = lines.reader(f)
    assert.are.same({"z", 1000000, "q1000000"}, {lines.message(r, "q", 999999)})
    assert.are.same({n = 2, nil, 7}, table.pack(lines.message(lines.reader(f), "", 7))) -- f is at its end
    assert.has_error(function() lines.message(r, nil, 0) end)
    assert.has_error(function() lines.message(r, "p", "x") end)
    assert.has_error(function() lines.message(f, "p", 0) end)
    f:close(); os.remove(path)
  end)

  it("next takes a reader only: anything else (a file, a look-alike table, nil) raises", function()
    local path, f = file_of("a\nb\n")
    local r = lines.reader(f)
    assert.are.equal("a", lines.next(r))
    assert.are.equal("b", r:next())
    for _, v in ipairs({f, setmetatable({}, getmetatable(r)), {}, "x"}) do
      local ok, err = pcall(lines.next, v)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("etlua.lines.reader expected", 1, true), err)
    end
    assert.is_false((pcall(lines.next)))
    assert.is_nil(lines.next(r))
    f:close(); os.remove(path)
  end)
end)
