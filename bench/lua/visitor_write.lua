-- A first visit's choice: no visitor id yet (the service issues one), as the banner sends it.
local body = '{"choices":{"preferences":true,"analytics":true,"marketing":false},"language":"sv",'
  .. '"text_shown":"Vi använder cookies för att webbplatsen ska fungera och, om du vill, för statistik och '
  .. 'marknadsföring. [Godkänn alla] [Neka alla] [Inställningar]","page_url":"https://www.wesafe.se/tjanster"}'

request = function()
  return wrk.format("POST", "/v1/visitor-consents", {["Content-Type"] = "application/json",
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36"}, body)
end
