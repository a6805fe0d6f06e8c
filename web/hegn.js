/* hegn staff page: attachments by file picker or drag and drop, and the
 * recipients a message with the chosen services may go to.  The page works
 * without this script except for attachments. */
(function () {
	"use strict";
	var ALLOWED = ["application/pdf", "image/png", "image/jpeg", "image/gif", "text/plain"];
	var MAX = 20 * 1024 * 1024;
	var hidden = document.getElementById("attachments");
	var list = document.getElementById("attach-list");
	var input = document.getElementById("f-files");
	var zone = document.getElementById("dropzone");
	var da = document.documentElement.lang !== "en";
	var files = [];

	function text(d, e) { return da ? d : e; }

	function render() {
		if (!list)
			return;
		while (list.firstChild)
			list.removeChild(list.firstChild);
		files.forEach(function (f, i) {
			var li = document.createElement("li");
			var b = document.createElement("button");
			li.appendChild(document.createTextNode(f.filename + " (" + f.content_type + ", " +
			    Math.round(f.data.length * 3 / 4) + " bytes) "));
			b.type = "button";
			b.textContent = text("Fjern", "Remove");
			b.setAttribute("aria-label", text("Fjern ", "Remove ") + f.filename);
			b.addEventListener("click", function () {
				files.splice(i, 1);
				save();
			});
			li.appendChild(b);
			list.appendChild(li);
		});
	}

	function save() {
		hidden.value = files.length ? JSON.stringify(files) : "";
		render();
	}

	function note(msg) {
		var li = document.createElement("li");
		li.className = "error";
		li.textContent = msg;
		list.appendChild(li);
	}

	function add(fileList) {
		Array.prototype.forEach.call(fileList, function (file) {
			var type = file.type || "application/octet-stream";
			if (ALLOWED.indexOf(type) < 0) {
				note(file.name + ": " + text("kun PDF, billeder og tekst", "only PDF, images and text"));
				return;
			}
			if (file.size > MAX) {
				note(file.name + ": " + text("for stor", "too large"));
				return;
			}
			var reader = new FileReader();
			reader.onload = function () {
				var url = String(reader.result);
				files.push({ filename: file.name, content_type: type,
				    data: url.substring(url.indexOf(",") + 1) });
				save();
			};
			reader.readAsDataURL(file);
		});
	}

	if (hidden && input && zone) {
		try {
			files = hidden.value ? JSON.parse(hidden.value) : [];
		} catch (e) {
			files = [];
		}
		render();
		input.addEventListener("change", function () {
			add(input.files);
			input.value = "";
		});
		["dragenter", "dragover"].forEach(function (ev) {
			zone.addEventListener(ev, function (e) {
				e.preventDefault();
				zone.classList.add("over");
			});
		});
		["dragleave", "drop"].forEach(function (ev) {
			zone.addEventListener(ev, function (e) {
				e.preventDefault();
				zone.classList.remove("over");
			});
		});
		zone.addEventListener("drop", function (e) {
			if (e.dataTransfer && e.dataTransfer.files)
				add(e.dataTransfer.files);
		});
	}

	/* A provider must be approved for every chosen service. */
	var boxes = document.querySelectorAll("input[name=services]");
	function filter() {
		var chosen = [];
		Array.prototype.forEach.call(boxes, function (b) {
			if (b.checked)
				chosen.push(b.value);
		});
		document.querySelectorAll("input[name=to][data-services]").forEach(function (r) {
			var have = r.getAttribute("data-services").split(",");
			var ok = document.getElementById("f-kind") === null ||
			    document.getElementById("f-kind").value !== "referral" ||
			    chosen.every(function (s) { return have.indexOf(s) >= 0; });
			r.disabled = !ok && r.getAttribute("data-services") !== "";
		});
	}
	Array.prototype.forEach.call(boxes, function (b) { b.addEventListener("change", filter); });
	var kind = document.getElementById("f-kind");
	if (kind)
		kind.addEventListener("change", filter);
	filter();
})();
