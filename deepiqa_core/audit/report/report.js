document.documentElement.classList.add("js");
function deepiqaSort(table, th, col) {
  var ascending = th.getAttribute("aria-sort") !== "ascending";
  Array.prototype.forEach.call(th.parentNode.cells, function (c) {
    c.removeAttribute("aria-sort");
  });
  th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  var numeric = th.getAttribute("data-type") === "num";
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
    if (x === "" || y === "") { return (x === "" ? 1 : 0) - (y === "" ? 1 : 0); }
    var d = numeric ? Number(x) - Number(y) : x.localeCompare(y);
    return ascending ? d : -d;
  });
  rows.forEach(function (r) { body.appendChild(r); });
}
Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    th.tabIndex = 0;
    th.addEventListener("click", function () { deepiqaSort(table, th, col); });
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); deepiqaSort(table, th, col); }
    });
  });
});
